"""One error shape for every failure: `{"error": {"code", "message", "details"}}`, never a bare 500 page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from calltracking.errors import CalltrackingError, DatabaseUnavailable

log = structlog.get_logger(__name__)
# Seconds a client is told to wait (Retry-After) when a dependency is unavailable.
RETRY_AFTER = web.AppKey("retry_after_seconds", int)


class ApiError(CalltrackingError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Gone(ApiError):
    status = 410
    code = "gone"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class InvalidHeader(ApiError):
    """A header that is not valid text (not UTF-8, control characters) or not what the operation takes."""

    status = 400
    code = "invalid_header"


class UnknownPbx(ApiError):
    """A `pbx` filter naming no configured PBX: a typo, not an empty report."""

    status = 400
    code = "unknown_pbx"


class RangeNotSatisfiable(ApiError):
    status = 416
    code = "range_not_satisfiable"


class InvalidRequest(ApiError):
    status = 422
    code = "invalid_request"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status, headers=headers
    )


_AIOHTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        headers = dict(exc.headers)
        if exc.status == 503:
            headers.setdefault("Retry-After", str(request.app[RETRY_AFTER]))
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)
    except DatabaseUnavailable as exc:
        # Nothing to fix in the request: the same request succeeds once the database answers again.
        log.info("api_database_unavailable", method=request.method, path=request.path, error=str(exc))
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; try again later",
            headers={"Retry-After": str(request.app[RETRY_AFTER])},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, _AIOHTTP_CODES.get(exc.status, "http_error"), exc.reason)
        if "Allow" in exc.headers:  # a 405 lists the methods the resource does allow (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("api_request_failed", method=request.method, path=request.path)
        return error_response(500, "internal_error", "the server failed on this request; it has been logged")
