""" "Test connection" for Segment's destinations: the definition's own `testAuthentication`,
run by a sidecar in this HTTP process, its requests sent the way delivery sends them.

The destination document is compiled as everywhere (`compile_destination`), so the settings
tried are exactly what the worker would use, and `delivery.base_url` applies. Each proxied
request goes through `delivery.sender.send(..., as_made=True)` with a short-lived session of
the delivery engine (`new_session`: the egress policy's resolver), under the destination's
request timeout. The sidecar lives for the one test (an HTTP process keeps no Node around),
and one test runs at a time per process.

What is shown never holds a secret: the error message and the last request's URL are redacted
with the destination's secret values, as delivery records are (`Redactor`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice.bridge import location
from sluice.bridge.destination import EXECUTE_TIMEOUTS, BridgedDestination
from sluice.bridge.results import ExecuteResult
from sluice.bridge.sidecar import Sidecar
from sluice.delivery.config import compile_destination
from sluice.delivery.exchange import Redactor
from sluice.delivery.sender import new_session
from sluice.errors import SluiceError
from sluice.store.base_workers import OAuthTokens

MAX_MESSAGE_CHARS = 600
_running: dict[int, asyncio.Lock] = {}  # per event loop: one test at a time


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    ok: bool
    message: str
    request: str = ""  # the last request made and its answer, redacted


async def check_connection(
    document: Mapping[str, Any], tokens: OAuthTokens | None = None
) -> ConnectionTest:
    """Run the destination's `testAuthentication` with its saved settings; with `tokens`
    (the store), an OAuth destination's refreshed tokens are used, as delivery uses them."""
    try:
        config = await asyncio.to_thread(compile_destination, document)
    except SluiceError as exc:
        return ConnectionTest(False, f"The settings do not compile: {exc}")
    destination = config.destination
    if not isinstance(destination, BridgedDestination):
        return ConnectionTest(False, "Only Segment's destinations have a connection test.")
    entry = destination.entry
    if not entry.has_test_authentication:
        return ConnectionTest(False, f"{entry.name} defines no connection test.")
    if tokens is not None:
        destination.keep_tokens(tokens, config.id)
    settings = await destination.settings_now()
    oauth = [str(v) for v in (settings.get("oauth") or {}).values() if v]
    redactor = Redactor([*destination.secret_values, *oauth])
    timeout_s = config.timeout_s
    lock = _running.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        sidecar = Sidecar(location.bridge_dir())
        sidecar.remember_secrets(destination.secret_values)
        sidecar.remember_secrets(oauth)
        try:
            async with new_session(limit=4) as session:
                fetch = destination.fetcher(session, timeout_s)
                result = await sidecar.test_auth(
                    entry.slug,
                    settings,
                    fetch=fetch,
                    timeout_s=timeout_s * EXECUTE_TIMEOUTS,
                )
        except TimeoutError:
            limit = timeout_s * EXECUTE_TIMEOUTS
            return ConnectionTest(False, f"No answer within {limit:g} s.")
        except (SluiceError, OSError) as exc:  # no bridge or Node, the sidecar died
            return ConnectionTest(False, _cut(redactor.text(f"The bridge failed: {exc}")))
        finally:
            await sidecar.stop()
    return _verdict(result, redactor, destination)


def _verdict(
    result: ExecuteResult, redactor: Redactor, destination: BridgedDestination
) -> ConnectionTest:
    last = result.exchanges[-1] if result.exchanges else None
    request = ""
    if last is not None:
        answer = f"HTTP {last.status}" if last.status else (last.error or "no response")
        url = redactor.url(destination.redirected(last.url))
        request = _cut(f"{last.method} {url} → {redactor.text(answer)}")
    error = result.error
    if result.ok and error is None:
        return ConnectionTest(True, f"{destination.entry.name} accepted these settings.", request)
    if error is None:
        return ConnectionTest(False, "The test failed without a message.", request)
    status = f" (HTTP {error.status})" if error.status else ""
    text = f"{error.name}{status}: {error.message}" if error.message else error.name + status
    return ConnectionTest(False, _cut(redactor.text(text)), request)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
