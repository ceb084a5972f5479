"""A step that fails again and again, logged once rather than once per retry.

The worker's loops (warehouse loads, the archive, identity, engage, log retention) retry a
failed step every few seconds or every minute, and a lane restarts a failed unit a second
later (runtime/units.py). Logged on each try, an outage of the bucket or
the database fills the log with the same line (a traceback each time, for unexpected errors)
and buries everything else. `FailureLog` logs a failure when it starts and when it changes
(another error type or message), once an hour while it lasts (so that someone reading the log
late still sees it), and one line when the step works again; the repeats go to DEBUG. The
failure stays visible meanwhile where it is counted: metrics and `sluice status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REMIND_S = 3600.0  # a failure that lasts is logged again this often


class FailureLog:
    """The failures of one repeated step (`what`, e.g. "warehouse lake: load")."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.what, self.clock = logger, what, clock
        self.attempts = 0  # failed attempts in a row
        self._error: tuple[type[BaseException], str] | None = None
        self._since = 0.0
        self._logged_at = 0.0

    @property
    def failing(self) -> bool:
        return self.attempts > 0

    def failed(self, exc: BaseException, retry_s: float, *, level: int = logging.WARNING) -> None:
        """Record a failed attempt; log it if it is new, different, or an hour after the last
        line. `level` ERROR (unexpected errors) also logs the traceback."""
        now = self.clock()
        error = (type(exc), str(exc))
        if not self.attempts:
            self._since = now
        self.attempts += 1
        traceback = exc if level >= logging.ERROR else None
        if error != self._error:
            self._error, self._logged_at = error, now
            self.logger.log(
                level, "%s failed, next try in %g s: %s", self.what, retry_s, exc,
                exc_info=traceback,
            )  # fmt: skip
        elif now - self._logged_at >= REMIND_S:
            self._logged_at = now
            self.logger.log(
                level, "%s still failing (%d attempts in %.0f s), next try in %g s: %s",
                self.what, self.attempts, now - self._since, retry_s, exc,
            )  # fmt: skip
        else:
            self.logger.debug("%s failed again (%d in a row): %s", self.what, self.attempts, exc)

    def succeeded(self) -> None:
        """Record a successful attempt: one line if it ends a failure."""
        if self.attempts:
            self.logger.info(
                "%s works again, after %d failed attempt%s in %.0f s",
                self.what, self.attempts, "" if self.attempts == 1 else "s",
                self.clock() - self._since,
            )  # fmt: skip
        self.attempts, self._error = 0, None
