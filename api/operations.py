"""Routes declared once: path, roles, request and response models. The same declaration checks the token
and role, validates the query and body, and produces the OpenAPI document, so the documentation cannot
drift from what the handlers accept and return."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from api.cursors import MAX_ID
from api.errors import (
    ApiError,
    BodyTooLarge,
    Forbidden,
    InvalidHeader,
    InvalidRequest,
    NotFound,
    UnknownPbx,
)
from api.schemas import ErrorOut
from calltracking.access.tokens import Principal, Role

ModelT = TypeVar("ModelT", bound=BaseModel)
ALL_ROLES = frozenset(Role)
# JSON bodies nest at most this deep. No request model nests more than a few levels; the limit only keeps
# a hostile body (`[[[[...` a thousand deep) from reaching the parser's recursion.
MAX_JSON_DEPTH = 64
# The keywords a path or header parameter's schema may use: those `_conforms` checks, so the document
# cannot promise a rule the server does not keep.
_PARAMETER_KEYWORDS = frozenset(
    {"type", "pattern", "minLength", "maxLength", "enum", "minimum", "maximum", "description"}
)
# A WebSocket upgrade, as the handshake (RFC 6455) and aiohttp take it.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
WEBSOCKET_HEADERS: dict[str, dict[str, Any]] = {
    "Upgrade": {"type": "string", "pattern": "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"},
    "Connection": {
        "type": "string",
        "pattern": rf"^(?:{_TOKEN} *, *)*[Uu][Pp][Gg][Rr][Aa][Dd][Ee](?: *, *{_TOKEN})*$",
        "description": "a list of connection options that includes `Upgrade`",
    },
    "Sec-WebSocket-Key": {
        "type": "string",
        "pattern": "^[A-Za-z0-9+/]{22}==$",
        "description": "16 random bytes, base64",
    },
    "Sec-WebSocket-Version": {"type": "string", "enum": ["13"]},
}


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
    # A WebSocket endpoint: the handshake's headers are required parameters, and 101 is its answer.
    websocket: bool = False
    # Raised for a header that is missing or not what the operation takes (default: invalid_header).
    bad_header: Callable[[str], ApiError] | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    @property
    def header_params(self) -> dict[str, tuple[dict[str, Any], bool]]:
        """Each header parameter's schema, and whether it is required."""
        optional = {name: (schema, False) for name, schema in self.headers.items()}
        if not self.websocket:
            return optional
        return optional | {name: (schema, True) for name, schema in WEBSOCKET_HEADERS.items()}


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
        websocket: bool = False,
        bad_header: Callable[[str], ApiError] | None = None,
    ) -> Callable[[Handler], Handler]:
        for schema in [*(path_params or {}).values(), *(headers or {}).values()]:
            unchecked = set(schema) - _PARAMETER_KEYWORDS
            if unchecked:
                raise ValueError(f"{method} {path}: parameter schema keywords not checked: {unchecked}")

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
                    path_params={name: _bounded(schema) for name, schema in (path_params or {}).items()},
                    public=public,
                    description=description,
                    extra_content=extra_content or {},
                    headers=headers or {},
                    is_bulk=is_bulk,
                    upload=upload,
                    websocket=websocket,
                    bad_header=bad_header,
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
        pbx_names: Collection[str] | None = None,
    ) -> None:
        """`body_limits`: the most bytes a request body may have, for ordinary and for bulk operations.
        `pbx_names`: the configured PBXs, the only values a query's `pbx` filter may take (any, if None)."""
        for operation in self.operations:
            route_path = operation.path
            for name, schema in operation.path_params.items():
                if schema.get("type") == "integer":
                    # ASCII digits only: the router's \d would also take other scripts' digits.
                    route_path = route_path.replace("{" + name + "}", "{" + name + ":[0-9]{1,19}}")
            limit = body_limits[1] if operation.is_bulk else body_limits[0]
            bound = _bind(operation, authenticate, observe, limit, pbx_names)
            app.router.add_route(operation.method, route_path, bound)

    def openapi(
        self, title: str, version: str, description: str, pbx_names: Collection[str] | None = None
    ) -> dict[str, Any]:
        """`pbx_names`: the configured PBXs, listed as the only values of every `pbx` filter (as `install`
        checks them), so the document promises no name the server refuses."""
        models: list[tuple[type[BaseModel], Any]] = [(ErrorOut, "serialization")]
        for op in self.operations:
            if op.body is not None:
                models.append((op.body, "validation"))
            models.extend((m, "serialization") for m in op.responses.values() if m is not None)
        unique = list(dict.fromkeys(models))
        refs, definitions = models_json_schema(unique, ref_template="#/components/schemas/{model}")
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation_document(op, refs, pbx_names)
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
    operation: Operation,
    authenticate: Authenticator,
    observe: Observer | None,
    body_limit: int,
    pbx_names: Collection[str] | None,
) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await _handle(operation, authenticate, request, body_limit, pbx_names)
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
    operation: Operation,
    authenticate: Authenticator,
    request: web.Request,
    body_limit: int,
    pbx_names: Collection[str] | None,
) -> web.StreamResponse:
    for name, value in request.headers.items():
        if not _is_text(value):
            raise InvalidHeader(f"the {name[:64]} header is not valid text", {"header": name[:64]})
    principal = None
    if not operation.public:
        principal = await authenticate(request)
        if principal.role not in operation.roles:
            raise Forbidden(f"the {principal.role.value} role may not use this endpoint")
    for header, (schema, required) in operation.header_params.items():
        given = request.headers.get(header)
        if (given is None and required) or (given is not None and not _conforms(schema, given)):
            if operation.bad_header is not None:
                raise operation.bad_header(header)
            raise InvalidHeader(f"the {header} header is missing or not valid", {"header": header})
    for name, schema in operation.path_params.items():
        # A path the router took but whose parameter breaks its schema names nothing that can exist.
        if not _conforms(schema, request.match_info[name]):
            raise NotFound(f"no such {name.removesuffix('_id')}")
    if any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        # No database stores a NUL byte (PostgreSQL refuses one): it is never a meaningful value.
        raise InvalidRequest("the query contains a NUL byte")
    query = _validated(operation.query, dict(request.query), "query") if operation.query else None
    # Every list and report filters by PBX the same way: one check here, not one per handler.
    pbx = getattr(query, "pbx", None)
    if pbx_names is not None and pbx is not None and pbx not in pbx_names:
        raise UnknownPbx(f"no PBX named {pbx!r}", {"pbx": pbx, "known": sorted(pbx_names)})
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
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, refused (422) when it is not JSON, uses NaN or Infinity (not JSON either),
    or nests arrays and objects more than MAX_JSON_DEPTH deep."""
    if not _nesting_within(raw, MAX_JSON_DEPTH):
        raise InvalidRequest(f"the body is not valid JSON, or nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(raw or b"null", parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body is not valid JSON", {"reason": str(exc)[:200]}) from exc
    if _SURROGATE_ESCAPE.search(raw) and not _is_unicode(value):
        # `"\ud800"` parses, but names half a character: no database (or UTF-8) can hold it.
        raise InvalidRequest("the body holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _is_unicode(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


def _nesting_within(raw: bytes, depth: int) -> bool:
    """Whether every array and object in `raw` closes within `depth` levels, checked before parsing (the
    parser recurses once per level). Strings are dropped, then each pass removes the innermost empty
    pairs: a body `depth` deep is empty after `depth` passes, each a linear scan in C. Brackets that do
    not pair up (not JSON) fail too."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(depth):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return not brackets


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _is_text(value: str) -> bool:
    """A header value the parser let through is still not text if it was not UTF-8 (aiohttp keeps such
    bytes as lone surrogates) or holds control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _CONTROL.search(value) is None


def _conforms(schema: Mapping[str, Any], value: str) -> bool:
    """Whether a path or header parameter, as text, is what its schema in the document says."""
    if schema.get("type") == "integer":
        if not (value.isascii() and value.isdigit()):
            return False
        number = int(value)
        return bool(schema.get("minimum", number) <= number <= schema.get("maximum", number))
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    return "pattern" not in schema or _ecma_pattern(schema["pattern"]).search(value) is not None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern (ECMA-262) in Python: its `$` ends the text, where Python's also matches
    before a final newline."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        python = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
        compiled = _PATTERNS[pattern] = re.compile(python)
    return compiled


def _validated(model: type[ModelT], data: Any, where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"location": [where, *map(str, error["loc"])], "message": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest(f"the request {where} is not valid", details) from exc


def _operation_document(
    op: Operation, refs: dict[Any, Any], pbx_names: Collection[str] | None = None
) -> dict[str, Any]:
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
        {"name": name, "in": "path", "required": True, "schema": schema}
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
            if name == "pbx" and pbx_names is not None:
                parameter["schema"] = {"type": "string", "enum": sorted(pbx_names)}
            parameters.append(parameter)
    parameters.extend(
        {"name": name, "in": "header", "required": required, "schema": schema}
        for name, (schema, required) in op.header_params.items()
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
    # Any request may be refused 400: a header that is not text (JSON error), or a request line or header
    # aiohttp's parser will not take, e.g. over 8 KiB (plain text, before any handler).
    error_statuses: dict[int, type[BaseModel] | None] = {400: ErrorOut}
    if op.body or op.query or op.path_params:
        error_statuses[422] = ErrorOut
    if op.body is not None or op.upload is not None:
        error_statuses[413] = ErrorOut
    if op.path_params:
        error_statuses[404] = ErrorOut
    if not op.public:
        # A token is checked against the database: while it is down, 503 with Retry-After.
        error_statuses |= {401: ErrorOut, 403: ErrorOut, 429: ErrorOut, 503: ErrorOut}
    if op.websocket:
        statuses[101] = None
    for status, model in {**error_statuses, **statuses}.items():
        entry: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "response")}
        if model is None and status >= 400:
            model = ErrorOut  # every error is `{"error": {...}}`, however the route declared it
        if model is not None:
            entry["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        if status == 400:
            entry["content"]["text/plain"] = {"schema": {"type": "string"}}
        entry.setdefault("content", {}).update(op.extra_content.get(status, {}))
        if not entry["content"]:
            del entry["content"]
        headers = _RESPONSE_HEADERS.get(status, {})
        if status == 101:
            headers = _UPGRADE_HEADERS
        if headers:
            entry["headers"] = headers
        document["responses"][str(status)] = entry
    return document


_RESPONSE_HEADERS: dict[int, dict[str, Any]] = {
    503: {
        "Retry-After": {
            "description": "seconds to wait before trying again",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    416: {
        "Content-Range": {
            "description": "the size of the whole representation, e.g. `bytes */48213`",
            "required": True,
            "schema": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
        }
    },
}
_UPGRADE_HEADERS: dict[str, Any] = {
    "Upgrade": {"required": True, "schema": {"type": "string", "enum": ["websocket"]}},
    "Connection": {"required": True, "schema": {"type": "string"}},
    "Sec-WebSocket-Accept": {"required": True, "schema": {"type": "string"}},
}


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
    101: "Switching protocols: the WebSocket is open",
    200: "OK",
    206: "Partial content (a Range request)",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "A header is not valid text or not what this operation takes, `pbx` names no configured PBX "
    "(`unknown_pbx`), or the request line or headers could not be parsed (e.g. a query string over 8 KiB: "
    "plain text)",
    401: "Missing or invalid token",
    403: "The token's role may not use this endpoint",
    404: "Not found (or not visible to this token)",
    409: "Conflict",
    410: "Gone (deleted by the retention policy)",
    413: "The body is larger than this operation takes",
    416: "The Range cannot be served from this file",
    422: "The request is not valid",
    429: "Rate limit exceeded for this token",
    503: "The database (or, where it applies, the PBX) is unavailable: try again after Retry-After",
}
