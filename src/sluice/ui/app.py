"""The web UI's Starlette app (being built: issue 6)."""

from __future__ import annotations

from starlette.applications import Starlette

from sluice.config import Settings
from sluice.store.base import Store


def build_ui(store: Store, settings: Settings) -> Starlette:
    return Starlette(routes=[])
