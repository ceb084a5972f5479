"""What `sluice serve` takes for itself before it announces anything: its data dir and its address.

Without these, a second `sluice serve` started by mistake looked healthy and was not: on a port
in use it printed "Sluice listening" and shared the port (granian binds with SO_REUSEPORT, so
the kernel split the clients between two servers with different stores), and on a data dir in
use it made a second owner of the embedded store. Both are refused with the reason, and the
first server is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from sluice.config import Settings
from sluice.errors import SluiceError

SERVE_LOCK_NAME = "serve.lock"


class StartRefused(SluiceError):
    """`sluice serve` cannot start: another process holds its address or its data dir."""


class _Held:
    """A lock file descriptor and a socket kept by the `sluice serve` process only.

    Forked children (granian's HTTP workers, the worker and its lanes) close their copies, so the
    claims end with the process that made them, and the PID in the lock file is the one to stop.
    """

    def __init__(self) -> None:
        self.lock_fd: int | None = None
        self.guard: socket.socket | None = None
        os.register_at_fork(after_in_child=self.release)

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        if self.guard is not None:
            self.guard.close()
            self.guard = None


@contextlib.contextmanager
def claim_start(settings: Settings) -> Iterator[None]:
    """Hold the data dir (embedded store only) and the address (unless `--role worker`) for as
    long as the server runs; raise `StartRefused` if another process holds either."""
    held = _Held()
    new_dir = not settings.data_dir.exists()
    try:
        if not settings.database_url:
            held.lock_fd = _lock_data_dir(settings.data_dir, shared=settings.role != "all")
        if settings.role != "worker":
            try:
                held.guard = _guard_address(settings.host, settings.port)
            except StartRefused:
                if new_dir and held.lock_fd is not None:
                    # Refused at once: no data dir left behind with only a lock file in it.
                    (settings.data_dir / SERVE_LOCK_NAME).unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        settings.data_dir.rmdir()
                raise
        yield
    finally:
        held.release()


class DataDirInUse(SluiceError):
    """Another process holds the data dir's lock (`holder`: its PID, when it wrote one)."""

    def __init__(self, data_dir: Path, holder: int | None) -> None:
        self.holder = holder
        who = f"another sluice serve (PID {holder})" if holder else "another sluice serve"
        super().__init__(f"{who} is running on the data dir {data_dir.absolute()}")


def lock_data_dir(data_dir: Path, *, shared: bool) -> int:
    """One `sluice serve` per embedded store: a `flock` on `<data_dir>/serve.lock`, with this
    process's PID in the file for the message of the next one. Returns the lock's descriptor
    (closing it releases the lock); raises `DataDirInUse`, or `OSError` when the file cannot be
    made.

    `serve` (role `all`) takes it exclusively: it runs everything, a second one is a mistake.
    Explicit roles (`--role collector`, `--role worker`) take it shared, so that processes of
    one machine can split the work on one SQLite file as docs/deploy.md describes, while an
    `all` next to them is still refused. `sluice restore` takes it exclusively while it fills a
    data dir. The lock, not the PID, decides: the kernel drops it when the process dies, even by
    kill -9, so a stale file never blocks a restart. Several nodes on one PostgreSQL are normal
    and take no lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / SERVE_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _pid_in(fd)
        os.close(fd)
        raise DataDirInUse(data_dir, holder) from None
    if not shared:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_data_dir(data_dir: Path, *, shared: bool) -> int:
    try:
        return lock_data_dir(data_dir, shared=shared)
    except OSError as exc:
        path = data_dir / SERVE_LOCK_NAME
        raise StartRefused(f"cannot lock the data dir: {path}: {exc.strerror or exc}") from None
    except DataDirInUse as exc:
        raise StartRefused(
            f"{exc}: stop it first, or give this one its own --data-dir (several servers on one"
            " store need PostgreSQL, or explicit --role collector/worker processes, see"
            " docs/deploy.md)"
        ) from None


def _pid_in(fd: int) -> int | None:
    # Empty while its holder is between taking the lock and writing its PID.
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _guard_address(host: str, port: int) -> socket.socket | None:
    """Refuse an address something listens on, then keep a socket that holds it against any
    other `sluice serve` until granian's workers listen on it.

    granian (2.8) binds each HTTP worker with SO_REUSEPORT and has no option against it: the
    kernel then lets every process of the same user bind and listen on the port too. A bind
    without SO_REUSEPORT still fails on a port anyone listens on, so that is the probe
    (SO_REUSEADDR: connections of a previous run in TIME_WAIT are no reason to refuse). The guard
    kept afterwards is bound with SO_REUSEPORT only and never listens: granian's workers bind
    next to it, it receives no connections, and the probe of a later `sluice serve` fails on it
    during the second this one takes to start.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise StartRefused(
            f"--host must be an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::), not {host!r}"
        ) from None
    if port == 0:
        return None  # any free port: nothing to share
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    shown = f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}"
    probe = socket.socket(family, socket.SOCK_STREAM)
    guard = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind(probe, host, port, shown)
        probe.close()
        guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        _bind(guard, host, port, shown)
    except BaseException:
        guard.close()
        raise
    finally:
        probe.close()
    return guard


def _bind(sock: socket.socket, host: str, port: int, shown: str) -> None:
    try:
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (another sluice serve or program holds it)"
        else:
            text = exc.strerror or str(exc)
            reason = text[:1].lower() + text[1:]
        raise StartRefused(f"cannot listen on {shown}: {reason}") from None
