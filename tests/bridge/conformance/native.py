"""The differential suite (issue 18): Sluice's native destinations against Segment's own code.

The same cases as the bridge's conformance suite (harness.py: the package's seeded generator
for every action, required-only and all fields; spec_cases.py: every Segment-spec event through
every automatic preset) are made by Segment's harness for the Segment destination each native
one reimplements (`NATIVE`), and sent by Sluice's native destination instead of the bridge: the
document is `type: <native>`, the same settings (native destinations read Segment's setting
names) and the same mapping and trigger. Compared as the conformance suite compares: method,
path and query, headers, body byte for byte, and the outcome.

Each native destination gets a recording server of its own (its `settings.endpoint`: every
native destination sends there, path kept), and its cases run one after another, so requests
are attributed without a path prefix (Slack's and the Webhook's `endpoint` replace the host
only). A case Sluice cannot even configure (an action the native destination lacks) is a
`refused` difference like any other.

Segment's harness runs under freeze.js (a fixed clock); the native destinations' modules see
the same instant through `time.time()` (`frozen_destination_clock`), so a time stamped when
none is mapped compares equal too.

What is not (yet) identical is listed, case by case, in docs/destinations/differential.json
(written by report_native.py): the test fails on a difference not listed there, and on a listed
one that no longer differs, so the list only shrinks. A deliberate difference is a documented
`Deviation` instead (and in docs/destinations/<name>.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from conformance import harness
from conformance.spec_cases import preset_indexes

from sluice.bridge.catalog import Catalog

# Segment's slug -> Sluice's native type that reimplements it.
NATIVE: dict[str, str] = {
    "amplitude": "amplitude",
    "mixpanel": "mixpanel",
    "google-analytics-4": "google-analytics-4",
    "posthog": "posthog",
    "slack": "slack",
    "webhook": "webhook-actions",
}
DIFFERENTIAL_JSON = harness.REPO / "docs" / "destinations" / "differential.json"
# Segment's setting that Sluice's `endpoint` (the base URL) would collide with, per slug: its
# value moves to the native setting of the same meaning first (Amplitude's region).
SEGMENT_ENDPOINT_SETTING: dict[str, str] = {"amplitude": "region"}


@dataclass(frozen=True)
class NativeCase:
    slug: str
    index: int  # in the Segment side's cases


def native_settings(slug: str, settings: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """Segment's settings of a case as the native destination's document gives them, with
    `endpoint` pointing at the recording server."""
    ours = dict(settings)
    if "endpoint" in ours and slug in SEGMENT_ENDPOINT_SETTING:
        ours[SEGMENT_ENDPOINT_SETTING[slug]] = ours.pop("endpoint")
    ours["endpoint"] = base_url
    return ours


def run_segment_cases(
    data_dir: Path, catalog: Catalog, work: Path, deps: Path
) -> list[dict[str, Any]]:
    """Segment's side for every action and automatic preset of the reimplemented ones."""
    actions = {slug: sorted(catalog.entries[slug].actions) for slug in NATIVE}
    presets = {s: i for s, i in preset_indexes(catalog).items() if s in NATIVE}
    return harness.run_segment_side(data_dir / "bridge", deps, actions, work, presets)


async def _native_case(
    case: Mapping[str, Any], server: harness.RecordingServer, session: aiohttp.ClientSession
) -> harness.SluiceRun:
    from sluice.delivery.config import DestinationConfigError, compile_destination
    from sluice.delivery.plan import plan
    from sluice.delivery.sending import Sender
    from sluice.store.base import StoredEvent

    slug = case["slug"]
    doc = {
        "id": f"native-{slug}",
        "type": NATIVE[slug],
        "settings": native_settings(slug, case["settings"], server.base_url),
        "mappings": [
            {
                "action": case["action"],
                "trigger": case.get("trigger", harness.TRIGGER),
                "mapping": case["mapping"],
            }
        ],
        "delivery": {"retry_window_s": 3600},
    }
    try:
        config = compile_destination(doc)
    except DestinationConfigError as exc:
        return harness.SluiceRun([], "refused", f"{exc.path}: {exc.message}")
    event = case["event"]
    stored = StoredEvent(
        1, "conformance", event["messageId"], event["type"], event.get("event"), 0,
        harness.msgspec.json.encode(event),
    )  # fmt: skip
    work = plan(config, [stored])
    try:
        result = await Sender(config, session).deliver(work, retry_in_step=False)
    except Exception as exc:  # a native builder that crashes is a difference, not a stop
        return harness.SluiceRun(server.requests.pop("", []), "crashed", repr(exc))
    return harness.verdict(server.requests.pop("", []), result, work)


async def run_native_side(cases: Sequence[Mapping[str, Any]]) -> list[harness.SluiceRun]:
    """Every case through the native destination, one recording server per destination."""
    from sluice.delivery.sender import new_session

    runs: dict[int, harness.SluiceRun] = {}
    by_slug: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        by_slug.setdefault(case["slug"], []).append(index)
    session = new_session()
    try:

        async def one_destination(indexes: list[int]) -> None:
            server = harness.RecordingServer(prefixed=False)
            await server.start()
            try:
                for index in indexes:
                    server.requests.clear()
                    runs[index] = await _native_case(cases[index], server, session)
            finally:
                await server.stop()

        await asyncio.gather(*(one_destination(ix) for ix in by_slug.values()))
    finally:
        await session.close()
    return [runs[i] for i in range(len(cases))]


FROZEN_S = 1709618828.009  # freeze.js's clock: 2024-03-05T06:07:08.009Z


class _FrozenTime(types.ModuleType):
    """The `time` module as a native destination sees it here: `time()` at freeze.js's
    instant (Segment's code stamps `Date.now()` where no time is mapped; so does Sluice's)."""

    def __init__(self) -> None:
        super().__init__("time")

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return FROZEN_S


@contextlib.contextmanager
def frozen_destination_clock() -> Iterator[None]:
    """Native destination modules see a frozen `time.time()` (only they: the engine's own
    timers and aiohttp's keep the real clock)."""
    import sluice.destinations  # noqa: F401  (their modules are imported by now)

    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith("sluice.destinations") and getattr(module, "time", None) is time:
            patched.append(module)
            module.time = _FrozenTime()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.time = time  # type: ignore[attr-defined]


def run_native_suite(
    data_dir: Path, catalog: Catalog, work: Path, deps: Path
) -> list[harness.CaseResult]:
    cases = run_segment_cases(data_dir, catalog, work, deps)
    broken = [c for c in cases if "load_error" in c]
    if broken:
        raise RuntimeError(f"definitions that did not load in plain Node: {broken}")
    from sluice.destinations.registry import load

    for type_id in NATIVE.values():  # imported now, so that their clocks can be frozen
        load(type_id)
    with frozen_destination_clock():
        runs = asyncio.run(run_native_side(cases))
    return [harness.judge(case, run) for case, run in zip(cases, runs, strict=True)]


def case_key(result: harness.CaseResult) -> str:
    return f"{result.slug}.{result.action} [{result.variant}]"


def known_differences(results: Sequence[harness.CaseResult]) -> dict[str, Any]:
    """differential.json: per native destination, its cases that differ, by case, with the
    kind and text of the first difference; and the counts."""
    by_native: dict[str, dict[str, str]] = {NATIVE[s]: {} for s in NATIVE}
    for result in results:
        if result.failed:
            first = result.differences[0]
            by_native[NATIVE[result.slug]][case_key(result)] = f"{first.kind}: {first.text}"[:300]
    return {
        "generated_by": "uv run python tests/bridge/conformance/report_native.py",
        "cases": len(results),
        "identical": sum(r.identical for r in results),
        "differ": {native: dict(sorted(found.items())) for native, found in by_native.items()},
    }
