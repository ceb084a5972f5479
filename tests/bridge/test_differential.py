"""The differential suite (issue 18, scope 1): Sluice's native destinations against Segment's own
code, case by case (conformance/native.py). Every case either is byte-identical, or differs by a
documented deviation, or is listed in docs/destinations/differential.json (what is not fixed
yet): a difference not listed fails, and so does a listed one that no longer differs (remove
it: `uv run python tests/bridge/conformance/report_native.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conformance import harness, native

from sluice.bridge.catalog import Catalog


@pytest.fixture(scope="session")
def results(
    bridge_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[harness.CaseResult]:
    deps = harness.install_node_deps()
    work = tmp_path_factory.mktemp("differential")
    catalog = Catalog.for_data_dir(bridge_data_dir)
    return native.run_native_suite(bridge_data_dir, catalog, work, deps)


def _listed() -> set[str]:
    committed = json.loads(native.DIFFERENTIAL_JSON.read_text())
    return {key for cases in committed["differ"].values() for key in cases}


def test_no_difference_that_is_not_listed(results: list[harness.CaseResult]) -> None:
    new = [r for r in results if r.failed and native.case_key(r) not in _listed()]
    report = "\n".join(f"{native.case_key(r)}: {r.differences[0]}" for r in new[:30])
    assert not new, f"{len(new)} native cases differ from Segment's code:\n{report}"


def test_a_fixed_difference_leaves_the_list(results: list[harness.CaseResult]) -> None:
    failing = {native.case_key(r) for r in results if r.failed}
    fixed = sorted(_listed() - failing)
    assert not fixed, f"no longer differ (regenerate differential.json): {fixed[:30]}"


def test_every_native_destination_ran_every_segment_action(
    results: list[harness.CaseResult], bridge_data_dir: Path
) -> None:
    catalog = Catalog.for_data_dir(bridge_data_dir)
    for slug in native.NATIVE:
        ran = {r.action for r in results if r.slug == slug}
        assert ran == set(catalog.entries[slug].actions), slug
    assert sum(r.identical for r in results) > 0
