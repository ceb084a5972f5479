"""Run the conformance suite over every supported destination and write its results and the
support matrix:

    uv run python tests/bridge/conformance/report.py [--data-dir DIR] [--only SLUG ...]

- docs/destinations/conformance.json: per destination, its actions and which passed (requests
  byte-identical to Segment's harness for both generated inputs), failed (with the first
  difference) or differ by a documented deviation;
- docs/destinations/catalog.md: the support matrix, generated from the installed catalogue and
  those results (`render_catalog_md`; tests/bridge/test_conformance.py checks both files are
  up to date).

The bridge is installed (once per lockfile) in the same cache as the tests use
(`~/.cache/sluice-tests`, or `SLUICE_TEST_CACHE`), unless --data-dir names one already installed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make `conformance` importable as in the tests
    sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]

from conformance import harness  # noqa: E402
from conformance.spec_cases import preset_indexes  # noqa: E402

from sluice.bridge.catalog import SUPPORT_CLASSES, Catalog, CatalogEntry  # noqa: E402
from sluice.bridge.install import install, lock_sha256  # noqa: E402

TITLES = {
    "supported": "Supported",
    "needs_oauth": "Needs OAuth",
    "unsupported": "Unsupported",
}
REGENERATE = "uv run python tests/bridge/conformance/report.py"


def installed_bridge(base: Path | None = None) -> Path:
    """The tests' installed bridge (a data dir), installed now if needed."""
    root = (base or harness.cache_root()) / f"bridge-{lock_sha256()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install(root)
    return root


RUNNABLE = ("supported", "needs_oauth")


def supported_actions(catalog: Catalog) -> dict[str, list[str]]:
    """What the suite runs: every destination Sluice can run (supported, or needing OAuth
    tokens), every action of it."""
    return {e.slug: sorted(e.actions) for s in RUNNABLE for e in catalog.of_class(s)}


def oauth_slugs(catalog: Catalog) -> frozenset[str]:
    return frozenset(e.slug for e in catalog.of_class("needs_oauth"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _conformance_cell(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "not run"
    total = len(result["actions"])
    cell = f"{len(result['passed'])}/{total}"
    if result["deviations"]:
        cell += f" (+{len(result['deviations'])} documented deviation)"
    if result["failed"]:
        cell += f" ({len(result['failed'])} failed)"
    return cell


def _row(entry: CatalogEntry, results: Mapping[str, Any]) -> str:
    zero = "yes" if entry.zero_config else "no"
    actions = ", ".join(sorted(entry.actions)) or "none"
    conformance = _conformance_cell(results.get(entry.slug)) if entry.support in RUNNABLE else ""
    cells = [entry.name, f"`{entry.type}`", entry.reason, zero, actions, conformance or "n/a"]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_catalog_md(catalog: Catalog, conformance: Mapping[str, Any]) -> str:
    """docs/destinations/catalog.md, from the catalogue and conformance.json."""
    doc = catalog.doc
    results: Mapping[str, Any] = conformance.get("destinations", {})
    counts = catalog.counts()
    spec = conformance.get("preset_cases") or {
        "events": [],
        "cases": 0,
        "matched": 0,
        "identical": 0,
    }
    zero = sum(1 for e in catalog.of_class("supported") if e.zero_config)
    tried = [r for slug, r in results.items() if slug in catalog.entries]
    actions = sum(len(r["actions"]) for r in tried)
    passed = sum(len(r["passed"]) for r in tried)
    deviating = sum(len(r["deviations"]) for r in tried)
    failed = sum(len(r["failed"]) for r in tried)
    lines = [
        "# Segment's destinations in Sluice",
        "",
        f"Generated from the catalogue of `@segment/action-destinations@{doc.package}` (the "
        "package `sluice bridge install` installs) and the conformance suite's results "
        "([conformance.json](conformance.json)). Do not edit by hand: regenerate both with",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
        "(`tests/bridge/test_conformance.py` fails when either is out of date.) How the bridge "
        "works and how the support classes are decided: [docs/bridge.md](../bridge.md).",
        "",
        f"{len(catalog.entries)} destinations: {counts['supported']} supported, "
        f"{counts['needs_oauth']} needing OAuth, {counts['unsupported']} unsupported"
        + f" ({zero} of the supported ones work with zero configuration: an automatic preset "
        "applies when no mapping is given).",
        "",
        "**Conformance** (supported destinations, and those needing OAuth with tokens given): "
        "for every action, inputs from the "
        "package's own seeded test-data generator (required fields only, then all fields, as "
        "Segment's snapshot tests make them) go through Segment's own test harness in plain "
        "Node and through Sluice's delivery engine and bridge to a local server; method, path "
        "and query, headers and body must be byte-identical. Then, for zero-config use, each "
        f"of {len(spec['events'])} Segment-spec events (every call type, browser and mobile "
        "contexts, ecommerce, odd values) against every automatic preset: "
        f"{spec['cases']} cases, {spec['matched']} matched by the preset's trigger in "
        f"Segment's FQL, {spec['identical']} identical (a non-matching event must be filtered "
        "by Sluice too). An action counts as passed when all its cases are. "
        f"{passed} of {actions} actions passed"
        + (f", {deviating} differ only by a documented deviation (below)" if deviating else "")
        + (f", {failed} failed" if failed else "")
        + ".",
        "",
        "Columns: Segment's name; the type to use in a destination document; why it is in "
        "its class; whether presets apply with no mapping; its actions; conformance "
        "(actions passed / actions).",
    ]
    for support in SUPPORT_CLASSES:
        entries = sorted(catalog.of_class(support), key=lambda e: (e.name.casefold(), e.slug))
        lines += [
            "",
            f"## {TITLES[support]} ({len(entries)})",
            "",
            "| Destination | Type | Reason | Zero-config | Actions | Conformance |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_row(entry, results) for entry in entries]
    normalisations: Mapping[str, str] = conformance.get("normalisations", {})
    if normalisations:
        lines += ["", "## How the two sides are compared", ""]
        lines += [f"- `{key}`: {_cell(text)}" for key, text in normalisations.items()]
    deviations: Mapping[str, str] = conformance.get("deviations", {})
    if deviations:
        lines += ["", "## Documented deviations", ""]
        for deviation_id, why in sorted(deviations.items()):
            users = sorted(s for s, r in results.items() if r["deviations"] and any(
                deviation_id in ids for ids in r["deviations"].values()))  # fmt: skip
            where = ", ".join(f"`segment:{s}`" for s in users) or "no destination at present"
            lines.append(f"- `{deviation_id}` ({where}): {_cell(why)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir with the bridge installed")
    parser.add_argument("--only", nargs="*", help="these destinations only (no files written)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance-work/report"))
    args = parser.parse_args(argv)
    data_dir = args.data_dir or installed_bridge()
    catalog = Catalog.for_data_dir(data_dir)
    destinations = supported_actions(catalog)
    if args.only:
        destinations = {s: a for s, a in destinations.items() if s in args.only}
    started = time.monotonic()
    presets = {s: i for s, i in preset_indexes(catalog).items() if s in destinations}
    deps = harness.install_node_deps()
    oauth = oauth_slugs(catalog)
    results = harness.run_suite(data_dir, destinations, args.work, deps, presets, oauth)
    elapsed = time.monotonic() - started
    for result in results:
        if result.differences:
            label = "deviation " + ",".join(result.deviations) if result.deviations else "FAILED"
            print(f"{label}: {result.slug}.{result.action} [{result.variant}]: "
                  f"{result.differences[0]}")  # fmt: skip
    summary = harness.summary(results, catalog.doc.package)
    print(f"{summary['cases']} cases, {summary['identical']} byte-identical, "
          f"{sum(r.failed for r in results)} failed, in {elapsed:.1f} s")  # fmt: skip
    if args.only:
        return 0
    harness.RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    harness.RESULTS_JSON.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    written = json.loads(harness.RESULTS_JSON.read_text())  # as the test reads it: keys sorted
    harness.CATALOG_MD.write_text(render_catalog_md(catalog, written))
    print(f"wrote {harness.RESULTS_JSON} and {harness.CATALOG_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
