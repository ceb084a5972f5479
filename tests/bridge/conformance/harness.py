"""The conformance suite: Segment's own harness against Sluice's delivery path, request by request.

For every supported destination x action of the installed catalogue, twice (required fields
only, all fields), inputs come from the package's own seeded generator, the recipe of Segment's
snapshot tests (segment_side.js). The same event, settings and mapping then go two ways:

- **Segment's side**: `createTestIntegration(definition).testAction(...)` in plain Node, every
  request intercepted by nock and recorded as it reached the wire (segment_side.js);
- **Sluice's side**: a `segment:<slug>` destination compiled by `compile_destination` (settings,
  mapping and trigger checked as `sluice apply` checks them), the event planned by the delivery
  engine (`plan`) and sent by its `Sender` through the sidecar and the engine's aiohttp client
  to a local recording server (`delivery.base_url`, each case under its own path prefix so many
  run at once against one server and one sidecar).

Both Node processes preload freeze.js (same clock, same "random" bytes), so volatile values are
equal instead of normalised. Compared per request, in order: method, path and query (the host
differs by design), headers (minus `TRANSPORT_HEADERS`; names are case-insensitive and repeated
headers are joined with ", ", as HTTP allows), and the body byte for byte; and the outcome
(Segment's code threw or not, Sluice delivered or not). A difference not covered by a
documented `Deviation` fails the suite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web
from conformance.spec_cases import spec_events

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FREEZE_JS = HERE / "freeze.js"
SEGMENT_SIDE_JS = HERE / "segment_side.js"
RESULTS_JSON = REPO / "docs" / "destinations" / "conformance.json"
CATALOG_MD = REPO / "docs" / "destinations" / "catalog.md"
VARIANTS = ("required", "all")

# What both halves' fake APIs answer to every request.
REPLY = {"status": 200, "headers": {"content-type": "application/json"}, "body": "{}"}
# Set by the HTTP client, not by Segment's code: node-fetch and Node's http module on one side,
# aiohttp on the other. `date`: sent by neither. `accept-encoding` differs in spelling only
# ("gzip,deflate" / "gzip, deflate"): each client decompresses what it asked for.
# `connection`: node-fetch without an agent closes, aiohttp keeps its pool alive.
# `content-length` and `host` are checked through the body and the path.
TRANSPORT_HEADERS = frozenset({"date", "content-length", "host", "accept-encoding", "connection"})
# `user-agent` is compared: Segment's request client sets "Segment (Actions)", and some
# destinations their own. Only when Segment's code set none does each client send its default
# (node-fetch's on Segment's side), and then it is not compared.
CLIENT_USER_AGENT = "node-fetch/"
TRIGGER = 'type = "track"'
# `settings.oauth` of the OAuth destinations' cases (a user pastes these from the provider).
OAUTH = {
    "access_token": "conformance-access-token",
    "refresh_token": "conformance-refresh-token",
    "clientId": "conformance-client-id",
    "clientSecret": "conformance-client-secret",
}
PARALLEL = 24  # destinations in flight at once on Sluice's side (one sidecar, one server)


# --- documented deviations -----------------------------------------------------------------------
BodyNormaliser = Callable[[Any], Any]


@dataclass(frozen=True)
class Deviation:
    """A known, deliberate difference, for some destinations: the request bodies compare equal
    once `normalise` (applied to both sides' JSON bodies) removes what is not Sluice's to match.
    Only what it removes is excused: any other difference still fails the case."""

    id: str
    why: str
    slugs: frozenset[str]
    normalise: BodyNormaliser


# The objects of the runtime that calls a perform, not of the event: Segment's production passes
# its own (its logger, its stats tags, the subscription's ids, OAuth data), its test harness
# others (no `auth` at all), Sluice's sidecar its own; they can never be equal.
RUNTIME_INPUTS = frozenset(
    {"auth", "statsContext", "logger", "subscriptionMetadata", "transactionContext",
     "stateContext", "features", "engageDestinationCache", "signal"}
)  # fmt: skip


def _without_runtime_inputs(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("payload"), dict):
        payload = {k: v for k, v in body["payload"].items() if k not in RUNTIME_INPUTS}
        return {**body, "payload": payload}
    return body


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "perform-input-sent-whole",
        "Blend AI's sendData sends its perform's whole input as `{payload: ...}`, including the "
        "caller's runtime objects (auth, statsContext, logger, subscriptionMetadata...), which "
        "differ between Segment's harness, Segment's production and Sluice's sidecar by nature. "
        "Compared without them (the event's data, settings and mapping output are compared).",
        frozenset({"blend-ai"}),
        _without_runtime_inputs,
    ),
)


# How the two sides are made comparable, for every case (they excuse no difference of Sluice's).
NORMALISATIONS: dict[str, str] = {
    "same-inputs": "Both sides get the same event (createTestEvent with a fixed messageId and "
    "timestamps), settings and mapping; Sluice's through a destination document "
    '(`segment:<slug>`, the mapping under the trigger `type = "track"`).',
    "setting-choices": "A setting with choices gets its default (or first choice) on both "
    "sides: the generator draws a random string for it, which Segment's settings form would "
    "not accept and `sluice apply` refuses.",
    "single-event": "Segment's harness (`testAction`) runs `perform` with one event, while "
    "Segment's production and Sluice run `performBatch` when the mapping turns "
    "`enable_batching` on: a generated `enable_batching: true` is set to false on both sides. "
    "A preset that turns batching on runs as Segment's production runs it (executeBatch with a "
    "batch of one on Segment's side; its multistatus error, if any, is the outcome).",
    "frozen-clock": "Both Node processes preload freeze.js: the same fixed Date, Math.random "
    "and crypto random bytes, so timestamps, signatures and generated ids are compared as "
    "they are, not masked.",
    "oauth": "An OAuth destination (needs_oauth) gets the same tokens on both sides: in "
    "`settings.oauth` on Sluice's, as the perform's `auth` on Segment's (what Segment's "
    "production derives from `settings.oauth`). Every answer is 200, so no refresh happens.",
    "runtime-options": "Segment's harness is given a statsContext with a statsClient and a "
    "full logger, as Segment's production (and Sluice's sidecar) give every perform; its "
    "defaults lack them.",
    "preset-cases": "Each Segment-spec event of tests/bridge/conformance/spec_events.json "
    "against each automatic preset: Segment's side matches the preset's trigger with "
    "Segment's own FQL and runs executeAction (what testAction wraps, without its test-event "
    "defaults) with the preset's mapping; Sluice's side is a destination with that trigger "
    "and mapping. An event Segment's FQL does not match must be filtered by Sluice; one it "
    "matches must make the same requests.",
    "module-state": "A destination's cases run one after another in the same order on both "
    "sides (module-level caches, e.g. Friendbuy's token, evolve alike); destinations run "
    "in parallel on Sluice's side.",
    "fake-api": "Every request is answered 200 `{}` (application/json) on both sides.",
    "transport-headers": "Not compared: headers the HTTP client sets (date, content-length, "
    "host, accept-encoding, connection; user-agent only when Segment's code set none). "
    'Repeated headers are compared joined with ", "; names case-insensitively.',
    "host": "The host differs by design (`delivery.base_url`); method, path and query are "
    "compared as sent.",
}


# --- installs ------------------------------------------------------------------------------------
def cache_root() -> Path:
    return Path(os.environ.get("SLUICE_TEST_CACHE", "~/.cache/sluice-tests")).expanduser()


def install_node_deps(base: Path | None = None) -> Path:
    """chance and nock (this folder's package-lock.json) with `npm ci`, once per lockfile, into
    the test cache; returns the folder whose node_modules is NODE_PATH for segment_side.js."""
    lock = (HERE / "package-lock.json").read_bytes()
    root = (base or cache_root()) / f"conformance-{hashlib.sha256(lock).hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "node_modules" / ".sluice-lock-sha256"
    sha = hashlib.sha256(lock).hexdigest()
    with (root / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text().strip() == sha):
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(HERE / name, root / name)
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is not on PATH: the conformance suite needs it once")
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=root, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"npm ci failed in {root}:\n{done.stderr[-2000:]}")
            marker.write_text(sha + "\n")
    return root


def frozen_node(work: Path) -> Path:
    """A folder holding a `node` that is the real one with freeze.js preloaded: first on PATH,
    it is what Sluice's sidecar starts (the sidecar finds node on PATH)."""
    real = shutil.which("node")
    if real is None:
        raise RuntimeError("node is not on PATH")
    folder = work / "frozen-node"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "node"
    wrapper.write_text(f'#!/bin/sh\nexec {real} --require {FREEZE_JS} "$@"\n')
    wrapper.chmod(0o755)
    return folder


# --- Segment's side ------------------------------------------------------------------------------
def run_segment_side(
    bridge_dir: Path,
    deps: Path,
    destinations: Mapping[str, Sequence[str]],
    work: Path,
    presets: Mapping[str, Sequence[int]] | None = None,
    oauth: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The cases (inputs and the requests Segment's harness made) for these destinations;
    with `presets` (per destination, indexes of its automatic presets), also each Segment-spec
    event (spec_cases.py) against each of them. The destinations in `oauth` get `OAUTH`'s
    tokens."""
    work.mkdir(parents=True, exist_ok=True)
    plan_path, out_path = work / "segment-plan.json", work / "segment-cases.json"
    presets = presets or {}
    plan = {
        "destinations": [
            {
                "slug": s,
                "actions": list(a),
                "presets": list(presets.get(s, ())),
                "oauth": OAUTH if s in oauth else None,
            }
            for s, a in destinations.items()
        ],
        "spec_events": spec_events() if presets else {},
        "reply": REPLY,
    }
    plan_path.write_text(json.dumps(plan))
    node = shutil.which("node") or "node"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NODE_PATH": str(deps / "node_modules"),
    }
    command = [node, "--require", str(FREEZE_JS), str(SEGMENT_SIDE_JS), str(bridge_dir)]
    done = subprocess.run(
        [*command, str(plan_path), str(out_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"segment_side.js failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cases: list[dict[str, Any]] = json.loads(out_path.read_bytes())["cases"]
    return cases


# --- Sluice's side -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arrived:
    """One request as it reached the recording server."""

    method: str
    target: str  # path and query, raw, without the case's prefix
    headers: dict[str, str]  # lower-cased names, repeated headers joined with ", "
    body: bytes


class RecordingServer:
    """A local HTTP server that records every request by its first path segment (the case);
    not `prefixed`, every request under "" with its whole path."""

    def __init__(self, *, prefixed: bool = True) -> None:
        self.prefixed = prefixed
        self.requests: dict[str, list[Arrived]] = {}
        self.base_url = ""
        self._runner: web.ServerRunner | None = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        raw = request.raw_path
        case, _, rest = raw.lstrip("/").partition("/") if self.prefixed else ("", "", raw[1:])
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        joined = {name: ", ".join(values) for name, values in headers.items()}
        arrived = Arrived(request.method, "/" + rest, joined, body)
        self.requests.setdefault(case, []).append(arrived)
        return web.Response(
            status=int(REPLY["status"]),  # type: ignore[call-overload]
            body=str(REPLY["body"]).encode(),
            headers=dict(REPLY["headers"]),  # type: ignore[call-overload]
        )

    async def start(self) -> None:
        self._runner = web.ServerRunner(web.Server(self._handle))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class SluiceRun:
    """What Sluice did with one case."""

    requests: list[Arrived] = field(default_factory=list)
    verdict: str = ""  # delivered, parked, retry, refused (at compile time)
    reason: str = ""


async def _sluice_case(
    index: int, case: Mapping[str, Any], server: RecordingServer, session: aiohttp.ClientSession
) -> SluiceRun:
    from sluice.delivery.config import DestinationConfigError, compile_destination
    from sluice.delivery.plan import plan
    from sluice.delivery.sending import Sender
    from sluice.store.base import StoredEvent

    key = f"c{index}"
    doc = {
        "id": f"conformance-{index}",
        "type": f"segment:{case['slug']}",
        "settings": case["settings"],
        "mappings": [
            {
                "action": case["action"],
                "trigger": case.get("trigger", TRIGGER),  # a preset case: the preset's own
                "mapping": case["mapping"],
            }
        ],
        "delivery": {"base_url": f"{server.base_url}/{key}", "retry_window_s": 3600},
    }
    try:
        config = compile_destination(doc)
    except DestinationConfigError as exc:
        return SluiceRun([], "refused", f"{exc.path}: {exc.message}")
    event = case["event"]
    now_ms = int(time.time() * 1000)
    stored = StoredEvent(
        1, "conformance", event["messageId"], event["type"], event.get("event"), now_ms,
        msgspec.json.encode(event),
    )  # fmt: skip
    work = plan(config, [stored])
    result = await Sender(config, session).deliver(work, retry_in_step=False)
    return verdict(server.requests.pop(key, []), result, work)


def verdict(requests: list[Arrived], result: Any, work: Any) -> SluiceRun:
    """What Sluice did with a case: the requests that arrived and how the step ended."""
    run = SluiceRun(requests)
    if result.parked:
        run.verdict, run.reason = "parked", result.parked[0].reason
    elif result.failed:
        run.verdict, run.reason = "retry", result.failed[0].error
    elif result.delivered:
        run.verdict = "delivered"
    else:
        run.verdict, run.reason = "filtered", json.dumps(work.filtered)
    return run


@contextlib.contextmanager
def _env_path(folder: Path) -> Iterator[None]:
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{folder}{os.pathsep}{before}"
    try:
        yield
    finally:
        os.environ["PATH"] = before


@contextlib.asynccontextmanager
async def _sluice(data_dir: Path, work: Path) -> AsyncIterator[None]:
    """This process's bridge pointed at `data_dir`, its sidecar started with the frozen node."""
    from sluice.bridge import location

    await location.stop_sidecar()  # one started earlier in this process runs an unfrozen node
    location.use_data_dir(data_dir)
    try:
        with _env_path(frozen_node(work)):
            yield
    finally:
        await location.stop_sidecar()
        location.use_data_dir(Path("sluice-data"))


async def run_sluice_side(
    data_dir: Path, cases: Sequence[Mapping[str, Any]], work: Path
) -> list[SluiceRun]:
    """Every case through Sluice's delivery path, many at once."""
    from sluice.delivery.sender import new_session

    server = RecordingServer()
    await server.start()
    limit = asyncio.Semaphore(PARALLEL)
    runs: dict[int, SluiceRun] = {}
    by_slug: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        by_slug.setdefault(case["slug"], []).append(index)
    try:
        async with _sluice(data_dir, work):
            session = new_session()
            try:

                async def one_destination(indexes: list[int]) -> None:
                    # A destination's cases one after the other, in Segment's order: module
                    # state (friendbuy caches its token) then evolves as on Segment's side.
                    async with limit:
                        for index in indexes:
                            runs[index] = await _sluice_case(index, cases[index], server, session)

                await asyncio.gather(*(one_destination(ix) for ix in by_slug.values()))
            finally:
                await session.close()
    finally:
        await server.stop()
    return [runs[i] for i in range(len(cases))]


# --- comparing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    kind: str  # count, method, target, headers, body, outcome, refused
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


def _segment_headers(raw: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {name.lower(): ", ".join(values) for name, values in raw.items()}


def _compared_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in TRANSPORT_HEADERS}


def _shorten(data: bytes, at: int) -> str:
    start = max(0, at - 40)
    return repr(data[start : at + 60])


def _normalised(body: bytes, normalise: BodyNormaliser) -> bytes:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    return json.dumps(normalise(parsed), sort_keys=True).encode()


def differences(
    case: Mapping[str, Any], run: SluiceRun, normalise: BodyNormaliser | None = None
) -> list[Difference]:
    """How Sluice's run differs from Segment's for one case (empty: byte-identical); with
    `normalise`, JSON bodies are compared after it (a documented deviation)."""
    if run.verdict == "refused":
        return [Difference("refused", f"Sluice refused the configuration: {run.reason}")]
    if case.get("matched") is False:  # Segment's FQL did not match the preset's trigger
        if run.verdict == "filtered" and not run.requests:
            return []
        text = f"Segment's trigger {case['trigger']!r} does not match; Sluice {run.verdict}"
        return [Difference("trigger", f"{text} ({len(run.requests)} requests)")]
    found: list[Difference] = []
    theirs = case["requests"]
    ours = run.requests
    for number, (seg, got) in enumerate(zip(theirs, ours, strict=False), 1):
        where = f"request {number}"
        if seg["method"] != got.method:
            found.append(Difference("method", f"{where}: {seg['method']} vs {got.method}"))
        if seg["path"] != got.target:
            found.append(Difference("target", f"{where}: {seg['path']!r} vs {got.target!r}"))
        expected = _compared_headers(_segment_headers(seg["headers"]))
        actual = _compared_headers(got.headers)
        if expected.get("user-agent", "").startswith(CLIENT_USER_AGENT):
            expected.pop("user-agent")  # Segment's code set none: each client's own default
            actual.pop("user-agent", None)
        if expected != actual:
            names = sorted(set(expected) | set(actual))
            diff = [
                f"{n}: {expected.get(n)!r} vs {actual.get(n)!r}"
                for n in names
                if expected.get(n) != actual.get(n)
            ]
            found.append(Difference("headers", f"{where}: " + "; ".join(diff)))
        body, got_body = base64.b64decode(seg["body_b64"]), got.body
        if normalise is not None:
            body, got_body = _normalised(body, normalise), _normalised(got_body, normalise)
        if body != got_body:
            at = next(
                (i for i, (a, b) in enumerate(zip(body, got_body, strict=False)) if a != b),
                min(len(body), len(got_body)),
            )
            shown = f"{_shorten(body, at)} vs {_shorten(got_body, at)}"
            found.append(Difference("body", f"{where}: first difference at byte {at}: {shown}"))
    if len(theirs) != len(ours):
        counts = f"Segment made {len(theirs)} requests, Sluice {len(ours)}"
        found.append(Difference("count", f"{counts} ({run.verdict}: {run.reason})"))
    error = case.get("error")
    threw = f"Segment's code threw {error['name']}: {error['message']}" if error else ""
    if error is None and run.verdict != "delivered":
        found.append(
            Difference("outcome", f"Segment's code succeeded, Sluice {run.verdict}: {run.reason}")
        )
    elif error is not None and run.verdict == "delivered":
        found.append(Difference("outcome", f"{threw}; Sluice delivered"))
    elif (
        error is not None
        and error["name"] not in run.reason
        and (not error["message"] or error["message"] not in run.reason)
    ):
        # Sluice parks (or retries) with the error Segment's code threw: its name or message.
        found.append(Difference("outcome", f"{threw}; Sluice {run.verdict}: {run.reason}"))
    return found


# --- results -------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    slug: str
    action: str
    variant: str
    differences: list[Difference]
    deviations: list[str]  # ids of the deviations that explain every difference
    segment_requests: int
    segment_error: str | None
    matched: bool | None = None  # a preset case: whether Segment's FQL matched its trigger

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def failed(self) -> bool:
        return bool(self.differences) and not self.deviations


def judge(case: Mapping[str, Any], run: SluiceRun) -> CaseResult:
    """The case's differences, and the documented deviation that explains all of them, if any."""
    found = differences(case, run)
    used: list[str] = []
    if found:
        for deviation in DEVIATIONS:
            if case["slug"] in deviation.slugs and not differences(case, run, deviation.normalise):
                used.append(deviation.id)
                break
    error = case.get("error")
    return CaseResult(
        case["slug"], case["action"], case["variant"], found, used,
        len(case["requests"]), f"{error['name']}: {error['message']}" if error else None,
        case.get("matched"),
    )  # fmt: skip


def run_suite(
    data_dir: Path,
    destinations: Mapping[str, Sequence[str]],
    work: Path,
    deps: Path,
    presets: Mapping[str, Sequence[int]] | None = None,
    oauth: Collection[str] = (),
) -> list[CaseResult]:
    """Both halves for these destinations and actions (and presets x Segment-spec events);
    one result per case."""
    cases = run_segment_side(data_dir / "bridge", deps, destinations, work, presets, oauth)
    broken = [c for c in cases if "load_error" in c]
    if broken:
        raise RuntimeError(f"definitions that did not load in plain Node: {broken}")
    runs = asyncio.run(run_sluice_side(data_dir, cases, work))
    return [judge(case, run) for case, run in zip(cases, runs, strict=True)]


def summary(results: Iterable[CaseResult], package: str) -> dict[str, Any]:
    """conformance.json: per destination, its actions and how each went (both variants)."""
    by_slug: dict[str, dict[str, list[CaseResult]]] = {}
    for result in results:
        by_slug.setdefault(result.slug, {}).setdefault(result.action, []).append(result)
    destinations: dict[str, Any] = {}
    for slug in sorted(by_slug):
        actions = by_slug[slug]
        passed, failed, deviations = [], {}, {}
        for action in sorted(actions):
            cases = actions[action]
            if all(c.identical for c in cases):
                passed.append(action)
            elif any(c.failed for c in cases):
                first = next(c for c in cases if c.failed)
                failed[action] = f"[{first.variant}] {first.differences[0]}"
            else:
                deviations[action] = sorted({d for c in cases for d in c.deviations})
        destinations[slug] = {
            "actions": sorted(actions),
            "passed": passed,
            "failed": failed,
            "deviations": deviations,
        }
    cases = [c for a in by_slug.values() for cs in a.values() for c in cs]
    preset_cases = [c for c in cases if c.matched is not None]
    return {
        "package": f"@segment/action-destinations@{package}",
        "generated_by": "uv run python tests/bridge/conformance/report.py",
        "cases": len(cases),
        "identical": sum(c.identical for c in cases),
        "preset_cases": {
            "events": sorted(spec_events()),
            "cases": len(preset_cases),
            "matched": sum(bool(c.matched) for c in preset_cases),
            "with_requests": sum(c.segment_requests > 0 for c in preset_cases),
            "identical": sum(c.identical for c in preset_cases),
        },
        "normalisations": NORMALISATIONS,
        "deviations": {d.id: d.why for d in DEVIATIONS},
        "destinations": destinations,
    }
