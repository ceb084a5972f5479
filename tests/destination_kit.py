"""What destination tests share: apply a destination's presets, and send requests for real."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sluice.delivery.sender import new_session, send
from sluice.destinations.base import Destination, Mapped, OutRequest, Preset, Response
from sluice.fql import compile_trigger
from sluice.mapping import resolve

TIMEOUT_S = 5.0


def presets_matching(
    destination: type[Destination], event: dict[str, Any]
) -> list[tuple[Preset, Mapped]]:
    """Each preset whose trigger matches the event, with the payload its mapping makes."""
    return [
        (p, Mapped(event["messageId"], resolve(p.mapping, event), event))
        for p in destination.presets
        if compile_trigger(p.trigger)(event)
    ]


def deliver(requests: Sequence[OutRequest]) -> list[Response]:
    """Send the requests one after another over real HTTP (to the test's recorder)."""

    async def go() -> list[Response]:
        async with new_session() as session:
            return [await send(session, request, TIMEOUT_S) for request in requests]

    return asyncio.run(go())
