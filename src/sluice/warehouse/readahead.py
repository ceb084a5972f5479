"""The next chunk of the log read column by column while the loader plans this one.

A chunk read column by column (store/columns.py) is read in C without the GIL, ~0.6 s of CPU
per 200,000 events here, during which the loader's thread plans nothing. Reading the next chunk
on a thread of its own while this one is planned takes that read off the loader's path. (Rows
read ahead contended for the GIL with the planner's Python and made loads slower: measured, not
kept.)

The chunk read ahead is the one the loader asks for next, or it is read again (a mismatch is only
the end of a log that grew meanwhile). A read ahead holds events of positions the log had when
it was read, which a privacy deletion's fence covers (docs/privacy-targets.md), and nothing
outlives the load: `close` waits for the read in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from sluice.store.columns import LogColumns

ReadColumns = Callable[[int, int], LogColumns | None]


class ColumnsAhead:
    """`read_columns(position, size)` with the next chunk read on a thread meanwhile."""

    def __init__(self, read_columns: ReadColumns, thread_name: str) -> None:
        self._read = read_columns
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._ahead: tuple[int, int, Future[LogColumns | None]] | None = None

    def read(self, position: int, size: int) -> LogColumns | None:
        """As `read_columns(position, size)`; when that reads `size` events, the `size` after
        them are read on the thread, for the next call."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[:2] == (position, size):
            columns = ahead[2].result()
        else:
            if ahead is not None:
                ahead[2].cancel()
            columns = self._read(position, size)
        if columns is not None and len(columns) == size:
            end = columns.last_seq
            self._ahead = (end, size, self._pool.submit(self._read, end, size))
        return columns

    def close(self) -> None:
        """Stop reading ahead (the read in flight is waited for, and dropped)."""
        self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)
