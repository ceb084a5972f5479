"""The conformance suite (issue 17, scope 7): for every supported destination x action of the
installed catalogue, what Segment's own test harness sends in plain Node, compared byte for byte
with what Sluice's delivery engine and bridge send to a local server (conformance/harness.py);
and Segment-spec events through every automatic preset (conformance/spec_cases.py).
And the generated support matrix: docs/destinations/catalog.md and conformance.json must be what
`tests/bridge/conformance/report.py` makes of this catalogue and this run.

All 150 supported destinations and the 23 needing OAuth run (5,620 cases in about 25 s after the
installs): no subset.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from conformance import harness
from conformance.report import REGENERATE, oauth_slugs, render_catalog_md, supported_actions
from conformance.spec_cases import is_spec_variant, preset_indexes, spec_events

from sluice.bridge.catalog import Catalog


@pytest.fixture(scope="session")
def catalog(bridge_data_dir: Path) -> Catalog:
    return Catalog.for_data_dir(bridge_data_dir)


@pytest.fixture(scope="session")
def results(
    bridge_data_dir: Path, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> list[harness.CaseResult]:
    deps = harness.install_node_deps()
    work = tmp_path_factory.mktemp("conformance")
    presets, oauth = preset_indexes(catalog), oauth_slugs(catalog)
    actions = supported_actions(catalog)
    return harness.run_suite(bridge_data_dir, actions, work, deps, presets, oauth)


def test_sluice_sends_what_segments_harness_sends(results: list[harness.CaseResult]) -> None:
    failed = [r for r in results if r.failed]
    report = "\n".join(
        f"{r.slug}.{r.action} [{r.variant}]: {r.differences[0]}" for r in failed[:40]
    )
    assert not failed, f"{len(failed)} of {len(results)} cases differ from Segment's:\n{report}"


def test_every_supported_action_ran_both_inputs(
    results: list[harness.CaseResult], catalog: Catalog
) -> None:
    ran = {(r.slug, r.action, r.variant) for r in results if not is_spec_variant(r.variant)}
    expected = {
        (slug, action, variant)
        for slug, actions in supported_actions(catalog).items()
        for action in actions
        for variant in harness.VARIANTS
    }
    assert ran == expected
    # Most cases make requests (the rest are refused by Segment's own validation of the random
    # input, and then Sluice must park them with the same error).
    generated = [r for r in results if not is_spec_variant(r.variant)]
    assert sum(r.segment_requests > 0 for r in generated) > len(generated) * 0.7


def test_every_automatic_preset_met_every_spec_event(
    results: list[harness.CaseResult], catalog: Catalog
) -> None:
    preset_cases = [r for r in results if r.matched is not None]
    presets = preset_indexes(catalog)
    expected = sum(len(i) for i in presets.values()) * len(spec_events())
    assert len(preset_cases) == expected and len(presets) > 50
    # Every event is sent somewhere by some preset, and most matches make requests.
    for name in spec_events():
        assert any(r.matched and r.variant.startswith(f"spec {name} /") for r in preset_cases)
    matched = [r for r in preset_cases if r.matched]
    assert sum(r.segment_requests > 0 for r in matched) > len(matched) * 0.6


def test_every_documented_deviation_is_still_needed(results: list[harness.CaseResult]) -> None:
    used = {d for r in results for d in r.deviations}
    assert used == {d.id for d in harness.DEVIATIONS}, "drop deviations no case needs any more"


def test_conformance_json_is_this_run(results: list[harness.CaseResult], catalog: Catalog) -> None:
    expected = harness.summary(results, catalog.doc.package)
    committed = json.loads(harness.RESULTS_JSON.read_text())
    assert committed == expected, f"docs/destinations/conformance.json is stale: {REGENERATE}"


def test_catalog_md_is_generated_from_the_catalogue(catalog: Catalog) -> None:
    conformance = json.loads(harness.RESULTS_JSON.read_text())
    assert harness.CATALOG_MD.read_text() == render_catalog_md(catalog, conformance), (
        f"docs/destinations/catalog.md is stale: {REGENERATE}"
    )


# --- the comparison itself (no Node) -------------------------------------------------------------
def _case(**extra: Any) -> dict[str, Any]:
    body = b'{"a":1}'
    request = {
        "method": "POST",
        "url": "https://api.example.com/v1/x?q=%25",
        "path": "/v1/x?q=%25",
        "headers": {"content-type": ["application/json"], "user-agent": ["Segment (Actions)"],
                    "accept-encoding": ["gzip,deflate"], "content-length": ["7"]},
        "body_b64": base64.b64encode(body).decode(),
    }  # fmt: skip
    return {"slug": "example", "action": "send", "variant": "all", "requests": [request],
            "error": None, **extra}  # fmt: skip


def _arrived(**changes: Any) -> harness.Arrived:
    fields: dict[str, Any] = {
        "method": "POST",
        "target": "/v1/x?q=%25",
        "headers": {"content-type": "application/json", "user-agent": "Segment (Actions)",
                    "accept-encoding": "gzip, deflate", "host": "127.0.0.1"},
        "body": b'{"a":1}',
    }  # fmt: skip
    fields.update(changes)
    return harness.Arrived(**fields)


@pytest.mark.parametrize(
    ("run", "kind"),
    [
        (harness.SluiceRun([_arrived()], "delivered"), None),
        (harness.SluiceRun([_arrived(body=b'{"a": 1}')], "delivered"), "body"),
        (harness.SluiceRun([_arrived(target="/v1/x?q=%")], "delivered"), "target"),
        (harness.SluiceRun([_arrived(method="PUT")], "delivered"), "method"),
        (harness.SluiceRun([_arrived(headers={"user-agent": "Segment (Actions)"})], "delivered"),
         "headers"),
        (harness.SluiceRun([_arrived(headers={"content-type": "application/json"})],
                           "delivered"), "headers"),
        (harness.SluiceRun([_arrived(), _arrived()], "delivered"), "count"),
        (harness.SluiceRun([_arrived()], "parked", "HTTP 400"), "outcome"),
        (harness.SluiceRun([], "refused", "settings.x: no"), "refused"),
    ],
    ids=["same", "body", "query-encoding", "method", "header-missing", "user-agent",
         "extra-request", "outcome", "refused"],
)  # fmt: skip
def test_any_difference_fails_the_case(run: harness.SluiceRun, kind: str | None) -> None:
    result = harness.judge(_case(), run)
    assert [d.kind for d in result.differences][:1] == ([kind] if kind else [])
    assert result.failed is (kind is not None)


def test_a_deviation_excuses_only_what_it_normalises() -> None:
    body = b'{"payload":{"x":1,"logger":{"name":"a"}}}'
    case = _case(slug="blend-ai")
    case["requests"][0]["body_b64"] = base64.b64encode(body).decode()
    runtime_only = harness.SluiceRun(
        [_arrived(body=b'{"payload":{"x":1,"logger":{"name":"b"},"auth":{}}}')], "delivered"
    )
    excused = harness.judge(case, runtime_only)
    assert excused.deviations == ["perform-input-sent-whole"] and not excused.failed
    real = harness.SluiceRun([_arrived(body=b'{"payload":{"x":2,"logger":{}}}')], "delivered")
    assert harness.judge(case, real).failed
    assert harness.judge(_case(), runtime_only).failed  # only for the destinations it names
