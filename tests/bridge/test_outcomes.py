"""The outcome table (docs/bridge.md) on plain values: no Node needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sluice.bridge.errors import SidecarDied
from sluice.bridge.outcomes import NOT_RETRIED_AFTER_WRITE, error_verdict, outcome_of
from sluice.bridge.results import EventStatus, Exchange, ExecuteResult, ThrownError
from sluice.bridge.sidecar import Sidecar
from sluice.destinations.base import Verdict


@pytest.mark.parametrize(
    ("error", "verdict", "reason"),
    [
        (
            ThrownError("RetryableError", "busy", 503),
            Verdict.RETRY,
            "HTTP 503 RetryableError: busy",
        ),
        (ThrownError("HTTPError", "Too Many", 429), Verdict.RETRY, "HTTP 429 HTTPError: Too Many"),
        (ThrownError("HTTPError", "Bad", 400), Verdict.PARK, "HTTP 400 HTTPError: Bad"),
        (ThrownError("IntegrationError", "x", 500, retry=False), Verdict.PARK, "HTTP 500"),
        (ThrownError("IntegrationError", "x", 400, retry=True), Verdict.RETRY, "HTTP 400"),
        (ThrownError("FetchError", "timeout", code="ETIMEDOUT"), Verdict.RETRY, "FetchError"),
        (ThrownError("TimeoutError", "Request timed out"), Verdict.RETRY, "TimeoutError"),
        (
            ThrownError("AggregateAjvError", "The root value is missing", 400),
            Verdict.PARK,
            "AggregateAjvError: The root value is missing",
        ),
        (ThrownError("PayloadValidationError", "no email", 400), Verdict.PARK, "no email"),
        (
            ThrownError("InvalidAuthenticationError", "Failed to refresh", 401),
            Verdict.PARK,
            "HTTP 401",
        ),
        (
            ThrownError("TypeError", "x is undefined"),
            Verdict.PARK,
            "bridge error: TypeError: x is undefined",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, ThrownError) else None,
)
def test_thrown_errors(error: ThrownError, verdict: Verdict, reason: str) -> None:
    found, why = error_verdict(error)
    assert found is verdict and reason in why


def post(status: int, **headers: str) -> Exchange:
    return Exchange("POST", "https://x.test/", {}, b"{}", status, headers, b"")


def test_retry_after_comes_from_the_proxied_response() -> None:
    result = ExecuteResult(False, error=ThrownError("HTTPError", "slow down", 429),
                           exchanges=[post(429, **{"Retry-After": "12"})])  # fmt: skip
    outcome = outcome_of(result, ["m"], destination="webhook")
    assert (outcome.verdict, outcome.retry_after_s) == (Verdict.RETRY, 12.0)


def test_a_get_success_does_not_stop_a_retry() -> None:
    got = Exchange("GET", "https://x.test/", {}, b"", 200, {}, b"")
    result = ExecuteResult(False, error=ThrownError("HTTPError", "down", 502),
                           exchanges=[got, post(502)])  # fmt: skip
    assert outcome_of(result, ["m"], destination="webhook").verdict is Verdict.RETRY
    written = ExecuteResult(False, error=ThrownError("HTTPError", "down", 502),
                            exchanges=[post(201), post(502)])  # fmt: skip
    parked = outcome_of(written, ["m"], destination="webhook")
    assert parked.verdict is Verdict.PARK and parked.reason.endswith(NOT_RETRIED_AFTER_WRITE)
    assert (
        outcome_of(written, ["m"], destination="webhook", idempotent=True).verdict is Verdict.RETRY
    )


def test_multistatus_all_failed_and_missing_entries() -> None:
    statuses = [EventStatus(429, "RETRYABLE", "slow"), EventStatus(400, "BAD_REQUEST", "bad")]
    result = ExecuteResult(
        True, multistatus=statuses, exchanges=[post(429, **{"retry-after": "3"})]
    )
    outcome = outcome_of(result, ["a", "b", "c"], destination="x")
    assert outcome.verdict is Verdict.RETRY and outcome.retry_after_s == 3.0
    assert {k: f.verdict for k, f in outcome.failures.items()} == {
        "a": Verdict.RETRY, "b": Verdict.PARK, "c": Verdict.PARK,
    }  # fmt: skip
    assert outcome.failures["c"].reason == "bridge error: no status for this event"


def test_single_event_outputs() -> None:
    executed = ExecuteResult(True, outputs=["Mappings resolved", "Action Executed"],
                             exchanges=[post(202)])  # fmt: skip
    assert outcome_of(executed, ["m"], destination="x").reason == "HTTP 202"
    skipped = outcome_of(ExecuteResult(True, outputs=["not subscribed"]), ["m"], destination="x")
    assert skipped.verdict is Verdict.PARK and "subscription" in skipped.reason


def test_a_sidecar_breaking_the_protocol_is_restarted(tmp_path: Path) -> None:
    """Not Segment's code: a stand-in that answers `ready`, then junk, to check the Python side
    treats a broken line as a dead sidecar."""
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "sidecar.js").write_text(
        "process.stdout.write(JSON.stringify({op: 'ready'}) + '\\n');\n"
        "process.stdin.on('data', () => process.stdout.write('this is not JSON\\n'));\n"
    )

    async def body() -> str:
        sidecar = Sidecar(tmp_path)
        try:
            with pytest.raises(SidecarDied) as died:
                await sidecar.execute("webhook", {}, {}, event={})
            return str(died.value)
        finally:
            await sidecar.stop()

    assert "protocol error" in asyncio.run(body())
