"""Errors of the admin API, each with the HTTP status and the `code` its JSON body carries.

The service functions raise these, so the HTTP layer only turns them into
`{"code": ..., "message": ...}` responses and a caller in Python (the UI) can tell "not found"
from "invalid" without parsing text. `field` names the offending field of a request body, in the
body's own terms (`settings.api_key`), when there is one.

Tree:
    SluiceError
    └── ApiError            400 bad_request: a request the API cannot read (query, JSON)
        ├── Unauthorized    401 unauthorized: no bearer token, or not a valid one
        ├── NotFound        404 not_found: no such object
        ├── Conflict        409 conflict, already_exists, replay_running, busy, ...
        └── Invalid         422 invalid: the change breaks a rule of the workspace
"""

from __future__ import annotations

from typing import ClassVar

from sluice.errors import SluiceError


class ApiError(SluiceError):
    """A request the API refuses; `status` and `code` say how, `message` says why."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field

    def body(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class Unauthorized(ApiError):
    status = 401
    default_code = "unauthorized"


class NotFound(ApiError):
    status = 404
    default_code = "not_found"


class Conflict(ApiError):
    status = 409
    default_code = "conflict"


class Invalid(ApiError):
    status = 422
    default_code = "invalid"
