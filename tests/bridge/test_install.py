"""Installing the pinned package, its catalogue and support classes, and the `sluice bridge`
commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.bridge.catalog import Catalog
from sluice.bridge.errors import NodeUnavailable, UnknownSegmentDestination
from sluice.bridge.install import install, js_dir, node_version
from sluice.cli.main import app


@pytest.fixture(scope="module")
def catalog(bridge_data_dir: Path) -> Catalog:
    return Catalog.for_data_dir(bridge_data_dir)


def test_every_definition_of_the_package_is_described(catalog: Catalog) -> None:
    assert catalog.doc.package == "3.497.0"
    assert catalog.doc.errors == []  # xml-js in the lock: salesforce-marketing-cloud loads too
    assert len(catalog.entries) == 216
    assert sum(len(e.actions) for e in catalog.entries.values()) == 603
    assert catalog.counts() == {"supported": 150, "needs_oauth": 23, "unsupported": 43}
    assert sum(e.zero_config for e in catalog.entries.values()) == 89


@pytest.mark.parametrize(
    ("slug", "support", "reason"),
    [
        ("braze", "supported", "HTTP only, custom authentication"),
        ("slack", "supported", "HTTP only, none authentication"),
        ("customerio", "supported", "HTTP only, basic authentication"),
        ("salesforce", "needs_oauth", "oauth2 authentication"),
        ("kafka", "unsupported", "(kafkajs)"),
        ("sftp", "unsupported", "(ssh2-sftp-client)"),
        ("aws-kinesis", "unsupported", "@aws-sdk/client-kinesis"),
        ("hubspot", "unsupported", "transactionContext"),
        ("twilio-studio", "unsupported", "stateContext"),
        ("amplitude-cohorts", "unsupported", "audience-only"),
        ("facebook-custom-audiences", "unsupported", "audience-only"),
        ("klaviyo", "supported", "custom authentication"),  # audiences and events: kept
    ],
    ids=lambda v: str(v),
)
def test_support_classes(catalog: Catalog, slug: str, support: str, reason: str) -> None:
    entry = catalog.entries[slug]
    assert (entry.support, reason in entry.reason) == (support, True), entry.reason


def test_non_http_and_internal_sets_match_the_package(catalog: Catalog) -> None:
    non_http = sorted(e.slug for e in catalog.entries.values() if e.non_http_clients)
    assert non_http == ["amazon-eventbridge", "aws-kinesis", "aws-s3", "kafka",
                        "liveramp-audiences", "s3", "sftp", "the-trade-desk-crm"]  # fmt: skip
    internal = sorted(e.slug for e in catalog.entries.values() if e.internal_contexts)
    assert internal == ["braze-cohorts", "engage-messaging-sendgrid", "hubspot",
                        "linkedin-audiences", "twilio-studio"]  # fmt: skip


def test_fields_are_json_schema_and_presets_are_kept(catalog: Catalog) -> None:
    amplitude = catalog.entries["amplitude"]
    assert amplitude.auth_fields["properties"]["apiKey"]["format"] == "password"
    assert "apiKey" in amplitude.auth_fields["required"]
    log_event = amplitude.actions["logEventV2"]
    assert log_event.fields["type"] == "object" and "event_type" in log_event.fields["required"]
    assert log_event.default_subscription == 'type = "track"'
    presets = {p.name for p in amplitude.automatic_presets()}
    assert "Track Calls" in presets
    assert "Browser Session Tracking" not in presets  # its action is device-mode only
    assert catalog.entries["mixpanel"].actions["trackEvent"].has_perform_batch


@pytest.mark.parametrize(
    "name",
    [
        "segment:braze",
        "braze",
        "Braze Cloud Mode (Actions)",
        "braze cloud mode (actions)",
        "actions-braze-cloud",
        "actions-braze",
        "60f9d0d048950c356be2e4da",
    ],
)
def test_names_resolve(catalog: Catalog, name: str) -> None:
    assert catalog.resolve(name).slug == "braze"


def test_resolve_amplitude_and_webhook_by_segment_names(catalog: Catalog) -> None:
    assert catalog.resolve("actions-amplitude").slug == "amplitude"
    assert catalog.resolve("5f7dd6d21ad74f3842b1fc47").slug == "amplitude"
    assert catalog.resolve("actions-webhook").type == "segment:webhook"


def test_unknown_name_suggests(catalog: Catalog) -> None:
    with pytest.raises(UnknownSegmentDestination, match="did you mean segment:braze"):
        catalog.resolve("segment:braz")


def test_install_again_is_a_no_op(bridge_data_dir: Path) -> None:
    said: list[str] = []
    catalog = install(bridge_data_dir, echo=said.append)
    assert said == [] and len(catalog.entries) == 216


def test_shipped_files_pin_the_package() -> None:
    lock = (js_dir() / "package-lock.json").read_text()
    assert '"@segment/action-destinations": "3.497.0"' in lock
    package = (js_dir() / "package.json").read_text()
    assert '"fast-uri": "3.0.6"' in package and '"@aws-sdk/client-kinesis"' in package


def test_node_missing_or_too_old_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NodeUnavailable, match=r"Node\.js 18\.17 or newer"):
        node_version(str(tmp_path / "no-node"))
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v16.20.0\n")
    old.chmod(0o755)
    with pytest.raises(NodeUnavailable, match=r"16\.20\.0 is too old.*sluice bridge install"):
        node_version(str(old))


def test_cli_install_status_and_catalog(bridge_data_dir: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(bridge_data_dir)]
    installed = runner.invoke(app, ["bridge", "install", *data])
    assert installed.exit_code == 0, installed.output
    assert "216 destinations (supported 150, needs_oauth 23, unsupported 43)" in installed.output
    status = runner.invoke(app, ["bridge", "status", *data])
    assert status.exit_code == 0, status.output
    assert "@segment/action-destinations 3.497.0" in status.output
    assert "zero-config (supported, with automatic presets): 89" in status.output
    listed = runner.invoke(app, ["bridge", "catalog", "--support", "needs_oauth", "--json", *data])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 23 and all('"support":"needs_oauth"' in line for line in lines)
    wrong = runner.invoke(app, ["bridge", "catalog", "--support", "maybe", *data])
    assert wrong.exit_code != 0


def test_cli_status_of_an_empty_data_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bridge", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "sluice bridge install" in result.output


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_node_version_here() -> None:
    major, minor = (int(x) for x in node_version().split(".")[:2])
    assert (major, minor) >= (18, 17)
