"""The HTTP edges of the admin API: bearer auth, query parameters, JSON responses and errors.

Every answer is JSON, errors included (`{"code": ..., "message": ...}`, plus `field` when a
field is at fault): the router's own 404 and 405, a bad query parameter, and an unexpected
exception, which is logged with its traceback and answered with a 500 that carries none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sluice.admin.errors import ApiError, Unauthorized
from sluice.admin.tokens import TokenVerifier

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

MAX_LIMIT = 1000
MAX_SQL_INT = 2**63 - 1  # the largest value the store's integer columns hold
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(data), status, headers, media_type="application/json")


def error_response(exc: ApiError) -> Response:
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="sluice"'
    return json_response(exc.body(), exc.status, headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """The router's 404 (no such path) and 405 (no such method), as JSON."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return json_response(
        {"code": code, "message": f"{exc.detail}: {request.method} {request.url.path}"},
        exc.status_code,
        dict(exc.headers or {}),
    )


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback too; the client gets no internals.
    log.error("admin API: %s %s failed: %r", request.method, request.url.path, exc)
    return json_response(
        {"code": "internal", "message": "Internal error; the server log has the details"}, 500
    )


def guarded(handler: Handler, verifier: TokenVerifier) -> Handler:
    """`handler`, answered only with a valid `Authorization: Bearer <token>`."""

    async def endpoint(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Send an admin token: Authorization: Bearer <token>")
        if await asyncio.to_thread(verifier.verify, token) is None:
            raise Unauthorized("The token is not valid (unknown or revoked)")
        return await handler(request)

    return endpoint


# --- query parameters ---------------------------------------------------------------------------
def query_str(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def query_int(
    request: Request, name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_parameter(name, f"Expected an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise _bad_parameter(name, f"Expected an integer {bounds}, got {value}")
    return value


def query_limit(request: Request, default: int) -> int:
    return query_int(request, "limit", default, 1, MAX_LIMIT)


def query_bool(request: Request, name: str) -> bool:
    raw = (request.query_params.get(name) or "false").lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise _bad_parameter(name, f"Expected true or false, got {raw!r}")


def query_choices(request: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    """A parameter that may be repeated (`?state=parked&state=resent`), each from `allowed`."""
    values = request.query_params.getlist(name)
    for value in values:
        if value not in allowed:
            raise _bad_parameter(name, f"Expected one of {', '.join(allowed)}, got {value!r}")
    return values


def _bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(f"{name}: {message}", code="bad_parameter", field=name)
