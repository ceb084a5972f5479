"""What one `execute` of the sidecar produced: Segment's per-event statuses or the error it
threw, and every HTTP exchange it made through the Python fetch proxy.

Kept apart from the process handling (`sidecar.py`) so that the outcome mapping
(`outcomes.py`) and its tests work on plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The outputs Segment's `Destination.onEvent` reports when a perform ran to its end.
EXECUTED = "Action Executed"
NOT_SUBSCRIBED = "not subscribed"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request a destination's code made, and what Python answered (status 0: none)."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int = 0
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    error: str | None = None  # the network error the JS side saw instead of a response
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ThrownError:
    """The error `onEvent`/`onBatch` threw, as the sidecar reported it."""

    name: str
    message: str
    status: int | None = None
    code: str | None = None
    retry: bool | None = None  # IntegrationError's own say, when it has one


@dataclass(frozen=True, slots=True)
class EventStatus:
    """One entry of Segment's multistatus answer to a batch."""

    status: int
    errortype: str | None = None
    errormessage: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class TokenRefresh:
    """New OAuth tokens Segment's refresh loop obtained during an execute (to persist)."""

    access_token: str
    refresh_token: str | None = None
    expires_in: float | None = None


@dataclass(slots=True)
class ExecuteResult:
    """The whole answer to one execute. `outputs` for a single event, `multistatus` for a batch
    (one entry per event, in order), `error` when Segment's code threw."""

    ok: bool
    outputs: list[str | None] = field(default_factory=list)
    multistatus: list[EventStatus] | None = None
    error: ThrownError | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    token_refreshes: list[TokenRefresh] = field(default_factory=list)

    @property
    def non_get_succeeded(self) -> bool:
        """A write already went through: re-running the whole perform could repeat it."""
        return any(
            x.method.upper() not in ("GET", "HEAD", "OPTIONS") and 200 <= x.status < 300
            for x in self.exchanges
        )

    @property
    def last_exchange(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None


Parsed = tuple[bool, list[str | None], list[EventStatus] | None, ThrownError | None]


def parse_result(message: Mapping[str, Any]) -> Parsed:
    """The `result` message's content as typed values."""
    if not message.get("ok"):
        raw = message.get("error") or {}
        status = raw.get("status")
        retry = raw.get("retry")
        error = ThrownError(
            name=str(raw.get("name") or "Error"),
            message=str(raw.get("message") or ""),
            status=status if isinstance(status, int) else None,
            code=str(raw["code"]) if raw.get("code") is not None else None,
            retry=retry if isinstance(retry, bool) else None,
        )
        return False, [], None, error
    outputs: list[str | None] = []
    multistatus: list[EventStatus] | None = None
    for item in message.get("result") or []:
        if isinstance(item, Mapping) and isinstance(item.get("multistatus"), list):
            multistatus = [_status(entry) for entry in item["multistatus"]]
        elif isinstance(item, Mapping):
            output = item.get("output")
            outputs.append(output if isinstance(output, str) else None)
    return True, outputs, multistatus, None


def _status(entry: Any) -> EventStatus:
    if not isinstance(entry, Mapping):
        return EventStatus(500, None, "no status for this event")
    status = entry.get("status")
    return EventStatus(
        status=status if isinstance(status, int) else 500,
        errortype=entry.get("errortype"),
        errormessage=entry.get("errormessage"),
        body=entry.get("body"),
    )
