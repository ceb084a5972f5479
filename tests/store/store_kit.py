"""Helpers for store tests: events, batches and workspace objects as the collector makes them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from sluice.store.base import AppendBatch, ConfigObject, NewEvent, Store


def now_ms() -> int:
    return int(time.time() * 1000)


def event(
    message_id: str,
    source_id: str = "web",
    type: str = "track",
    name: str | None = "Clicked",
    at: int | None = None,
) -> NewEvent:
    payload = msgspec.json.encode({"type": type, "messageId": message_id, "event": name})
    return NewEvent(source_id, message_id, type, name, now_ms() if at is None else at, payload)


def batch(*events: NewEvent, counters: dict[tuple[str, str], int] | None = None) -> AppendBatch:
    result = AppendBatch(events=list(events))
    for key, value in (counters or {}).items():
        result.count(*key, value)
    return result


def source_object(source_id: str, keys: list[str], enabled: bool = True) -> ConfigObject:
    body = {"id": source_id, "name": source_id.title(), "write_keys": keys, "enabled": enabled}
    return ConfigObject("source", source_id, msgspec.json.encode(body))


def source_counters(store: Store) -> dict[tuple[str, str], int]:
    """The per-source counters (the store also keeps a few of its own under source "")."""
    return {key: value for key, value in store.counters().items() if key[0]}


class Backend:
    """Opens stores of one kind on one shared database (several are several nodes or
    processes); closes whatever the test left open."""

    def __init__(
        self,
        name: str,
        open_: Callable[..., Store],
        integrity_error: tuple[type[Exception], ...],
    ) -> None:
        self.name = name
        self._open = open_
        self.integrity_error = integrity_error
        self._opened: list[Store] = []

    def open(self, **kwargs: Any) -> Store:
        store = self._open(**kwargs)
        self._opened.append(store)
        return store

    def close(self, store: Store) -> None:
        self._opened.remove(store)
        store.close()

    def close_all(self) -> None:
        while self._opened:
            self.close(self._opened[-1])
