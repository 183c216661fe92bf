"""Routes declared once: path, roles, request and response models. The same declaration checks the token
and role, validates the query and body, and produces the OpenAPI document, so the documentation cannot
drift from what the handlers accept and return."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from api.errors import ApiError, BodyTooLarge, Forbidden, InvalidRequest, NotFound
from api.schemas import ErrorOut
from calltracking.tokens import Principal, Role

ModelT = TypeVar("ModelT", bound=BaseModel)
ALL_ROLES = frozenset(Role)
# Ids are 32-bit integer columns on PostgreSQL: a larger id names nothing (404), it is not an error.
MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler gets besides the request: the caller, and its validated query and body."""

    principal: Principal | None
    query: BaseModel | None
    body: BaseModel | None

    def body_as(self, model: type[ModelT]) -> ModelT:
        if not isinstance(self.body, model):
            raise TypeError(f"this operation has no {model.__name__} body")
        return self.body

    def query_as(self, model: type[ModelT]) -> ModelT:
        if not isinstance(self.query, model):
            raise TypeError(f"this operation has no {model.__name__} query")
        return self.query

    @property
    def caller(self) -> Principal:
        if self.principal is None:
            raise TypeError("public operation: no caller")
        return self.principal


Handler = Callable[[web.Request, Context], Awaitable[web.StreamResponse]]
Authenticator = Callable[[web.Request], Awaitable[Principal]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[Role]
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    public: bool = False
    description: str = ""
    extra_content: dict[int, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    is_bulk: bool = False
    # A body the handler streams itself (not JSON), documented with this media type.
    upload: str | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        responses: dict[int, type[BaseModel] | None],
        roles: Iterable[Role] = ALL_ROLES,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        path_params: dict[str, dict[str, Any]] | None = None,
        public: bool = False,
        description: str = "",
        extra_content: dict[int, dict[str, Any]] | None = None,
        headers: dict[str, dict[str, Any]] | None = None,
        is_bulk: bool = False,
        upload: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=tag,
                    roles=frozenset(roles),
                    responses=responses,
                    body=body,
                    query=query,
                    path_params=path_params or {},
                    public=public,
                    description=description,
                    extra_content=extra_content or {},
                    headers=headers or {},
                    is_bulk=is_bulk,
                    upload=upload,
                )
            )
            return handler

        return register

    def install(
        self,
        app: web.Application,
        authenticate: Authenticator,
        observe: Observer | None = None,
        body_limits: tuple[int, int] = (1024 * 1024, 32 * 1024 * 1024),
    ) -> None:
        """`body_limits`: the most bytes a request body may have, for ordinary and for bulk operations."""
        for operation in self.operations:
            route_path = operation.path
            for name, schema in operation.path_params.items():
                if schema.get("type") == "integer":
                    route_path = route_path.replace("{" + name + "}", "{" + name + r":\d{1,19}}")
            limit = body_limits[1] if operation.is_bulk else body_limits[0]
            app.router.add_route(operation.method, route_path, _bind(operation, authenticate, observe, limit))

    def openapi(self, title: str, version: str, description: str) -> dict[str, Any]:
        models: list[tuple[type[BaseModel], Any]] = [(ErrorOut, "serialization")]
        for op in self.operations:
            if op.body is not None:
                models.append((op.body, "validation"))
            models.extend((m, "serialization") for m in op.responses.values() if m is not None)
        unique = list(dict.fromkeys(models))
        refs, definitions = models_json_schema(unique, ref_template="#/components/schemas/{model}")
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation_document(op, refs)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "servers": [{"url": "/"}],
            "paths": paths,
            "components": {
                "schemas": definitions.get("$defs", {}),
                "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            },
        }


Observer = Callable[[Operation, int, float], None]


def _bind(
    operation: Operation, authenticate: Authenticator, observe: Observer | None, body_limit: int
) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await _handle(operation, authenticate, request, body_limit)
            status = response.status
            return response
        except ApiError as exc:
            status = exc.status
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if observe is not None:
                observe(operation, status, time.perf_counter() - started)

    handle.__name__ = operation.operation_id
    return handle


async def _handle(
    operation: Operation, authenticate: Authenticator, request: web.Request, body_limit: int
) -> web.StreamResponse:
    principal = None
    if not operation.public:
        principal = await authenticate(request)
        if principal.role not in operation.roles:
            raise Forbidden(f"the {principal.role.value} role may not use this endpoint")
    for name, schema in operation.path_params.items():
        if schema.get("type") == "integer" and not 1 <= int(request.match_info[name]) <= MAX_ID:
            raise NotFound(f"no such {name.removesuffix('_id')}")
    if any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        # No database stores a NUL byte (PostgreSQL refuses one): it is never a meaningful value.
        raise InvalidRequest("the query contains a NUL byte")
    query = _validated(operation.query, dict(request.query), "query") if operation.query else None
    body = None
    if operation.body is not None:
        body = _validated(operation.body, await _json_body(request, body_limit), "body")
    return await operation.handler(request, Context(principal=principal, query=query, body=body))


async def _json_body(request: web.Request, limit: int) -> Any:
    if request.content_type not in ("application/json", ""):
        raise InvalidRequest("the body must be JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body may have at most {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise BodyTooLarge(f"the body may have at most {limit} bytes")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body is not valid JSON", {"reason": str(exc)[:200]}) from exc


def _validated(model: type[ModelT], data: Any, where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"location": [where, *map(str, error["loc"])], "message": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest(f"the request {where} is not valid", details) from exc


def _operation_document(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {},
    }
    if op.description:
        document["description"] = op.description
    if not op.public:
        document["security"] = [{"token": []}]
        roles = ", ".join(sorted(role.value for role in op.roles))
        document["description"] = (document.get("description", "") + f"\n\nRoles: {roles}.").strip()
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _bounded(schema)}
        for name, schema in op.path_params.items()
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        definitions = schema.get("$defs", {})
        for name, prop in schema.get("properties", {}).items():
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": _present(_inline(prop, definitions)),
            }
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameters.append(parameter)
    parameters.extend(
        {"name": name, "in": "header", "required": False, "schema": schema}
        for name, schema in op.headers.items()
    )
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.upload is not None:
        document["requestBody"] = {
            "required": True,
            "content": {op.upload: {"schema": {"type": "string", "format": "binary"}}},
        }
    statuses = dict(op.responses)
    error_statuses: dict[int, type[BaseModel] | None] = (
        {422: ErrorOut} if (op.body or op.query or op.path_params) else {}
    )
    if op.body is not None or op.upload is not None:
        error_statuses[413] = ErrorOut
    if not op.public:
        error_statuses |= {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}
    if op.query is not None:
        # aiohttp itself refuses a request line over 8 KiB (a query string that long), before any handler.
        error_statuses[400] = None
    for status, model in {**error_statuses, **statuses}.items():
        entry: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "response")}
        if model is not None:
            entry["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        entry.setdefault("content", {}).update(op.extra_content.get(status, {}))
        if not entry["content"]:
            del entry["content"]
        document["responses"][str(status)] = entry
    return document


def _present(schema: Any) -> Any:
    """A query parameter is there or not; it is never JSON null. pydantic's `X | None` becomes `X`, so
    clients (and schemathesis) are not told `null` is a value to send."""
    if isinstance(schema, dict) and isinstance(schema.get("anyOf"), list):
        options = [option for option in schema["anyOf"] if option != {"type": "null"}]
        if len(options) == 1:
            rest = {key: value for key, value in schema.items() if key != "anyOf"}
            return {**rest, **options[0]}
    return schema


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "integer":
        return {"minimum": 1, "maximum": MAX_ID, **schema}
    return schema


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """A query parameter's schema stands alone in OpenAPI: pydantic's local `$defs` references are
    replaced by what they name."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


_STATUS_TEXT = {
    200: "OK",
    206: "Partial content (a Range request)",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "The request line or headers could not be parsed (e.g. a query string over 8 KiB)",
    401: "Missing or invalid token",
    403: "The token's role may not use this endpoint",
    404: "Not found (or not visible to this token)",
    409: "Conflict",
    410: "Gone (deleted by the retention policy)",
    413: "The body is larger than this operation takes",
    422: "The request is not valid",
    429: "Rate limit exceeded for this token",
    503: "The PBX or the database is unavailable",
}
