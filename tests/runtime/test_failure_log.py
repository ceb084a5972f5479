"""A step failing on every retry is logged once, again when its error changes, hourly while it
lasts, and once when it works again (sluice/failure_log.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sluice.failure_log import REMIND_S, FailureLog
from sluice.runtime import units


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger="test.failure_log")
    return logging.getLogger("test.failure_log")


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_the_same_failure_is_one_line_then_debug(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    failures = FailureLog(logger, "warehouse w: load", clock=clock)
    for _ in range(5):
        failures.failed(OSError("bucket missing"), 60)
        clock.now += 60
    assert lines(caplog, logging.WARNING) == [
        "warehouse w: load failed, next try in 60 s: bucket missing"
    ]
    assert len(lines(caplog, logging.DEBUG)) == 4
    assert failures.failing and failures.attempts == 5


def test_a_different_error_is_logged_and_an_hour_brings_a_reminder(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    failures = FailureLog(logger, "archive: step", clock=clock)
    failures.failed(OSError("disk full"), 5)
    clock.now += 5
    failures.failed(PermissionError("read-only"), 5)  # another error: a line
    clock.now += 5
    failures.failed(PermissionError("read-only"), 5)  # the same: debug
    clock.now += REMIND_S
    failures.failed(PermissionError("read-only"), 5)  # still failing an hour later: a line
    assert lines(caplog, logging.WARNING) == [
        "archive: step failed, next try in 5 s: disk full",
        "archive: step failed, next try in 5 s: read-only",
        f"archive: step still failing (4 attempts in {5 + 5 + REMIND_S:.0f} s), next try in 5 s:"
        " read-only",
    ]


def test_recovery_is_one_line_and_a_new_failure_is_logged_again(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    failures = FailureLog(logger, "log retention", clock=clock)
    failures.succeeded()  # nothing was failing: nothing to say
    assert not caplog.records
    failures.failed(OSError("locked"), 60)
    clock.now += 60
    failures.failed(OSError("locked"), 60)
    clock.now += 30
    failures.succeeded()
    failures.succeeded()
    assert lines(caplog, logging.INFO) == [
        "log retention works again, after 2 failed attempts in 90 s"
    ]
    assert not failures.failing
    failures.failed(OSError("locked"), 60)  # the same error as before the recovery: new again
    assert len(lines(caplog, logging.WARNING)) == 2
    failures.succeeded()
    assert (
        lines(caplog, logging.INFO)[-1]
        == "log retention works again, after 1 failed attempt in 0 s"
    )


def test_unexpected_errors_carry_their_traceback_once(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    failures = FailureLog(logger, "identity: step")
    for _ in range(3):
        try:
            raise KeyError("profile")
        except KeyError as exc:
            failures.failed(exc, 5, level=logging.ERROR)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
    assert errors[0].getMessage() == "identity: step failed, next try in 5 s: 'profile'"


def test_a_unit_failing_at_once_each_time_is_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane's supervisor restarts a failed unit a second later, for ever: one traceback,
    not one a second; a unit that had run a while before failing is a new failure."""
    monkeypatch.setattr(units, "RESTART_S", 0.01)
    caplog.set_level(logging.INFO, logger="sluice.runtime.units")

    def failing(times: int) -> units.Job:
        calls = []

        async def job() -> None:
            calls.append(1)
            if len(calls) <= times:
                raise RuntimeError("store unreachable")

        return job

    asyncio.run(units.supervised("archive", failing(4)))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "archive failed, next try in 0.01 s: store unreachable"
    ]
    assert errors[0].exc_info is not None
    caplog.clear()
    monkeypatch.setattr(units, "WORKED_S", 0.0)  # each run "worked" before it failed
    asyncio.run(units.supervised("archive", failing(2)))
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
