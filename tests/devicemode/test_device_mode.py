"""Device mode (issue 19, scope 3): Segment's browser destinations loaded from Sluice.

`sluice device-mode install` puts the pinned `@segment/browser-destinations` (its built
`dist/web` tree) and a catalogue into the data dir. A workspace destination with `mode: device`
then appears in the settings analytics.js loads (`remotePlugins` + `integrations`), its bundle
is served under `/next-integrations/actions/`, and Sluice does not deliver it. In Debian's
Chromium, analytics-next (also served by Sluice) loads Amplitude's session plugin from Sluice,
the plugin stamps `integrations["Actions Amplitude"].session_id` on each event, and Sluice's
cloud Amplitude sends that session id: the plugin's effect observed end to end.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import track_from_snippet_page
from npm_installs import installed_once
from recorder import Recorder
from server import WRITE_KEY, SluiceServer, StartServer, wait_for
from sluice.analyticsjs import install as analytics_js
from sluice.devicemode import install as device_mode
from sluice.devicemode.catalog import CATALOG_FILE, DIR_NAME, DeviceCatalog

APP_KEY = "app-write-key-2"
SESSION = {"id": "amp-session", "type": "amplitude-plugins", "mode": "device", "sources": ["web"]}


@pytest.fixture(scope="session")
def device_installed() -> Path:
    return installed_once("device-mode", device_mode.lock_sha256(), device_mode.install)


@pytest.fixture(scope="session")
def analytics_installed() -> Path:
    return installed_once("analytics-js", analytics_js.lock_sha256(), analytics_js.install)


def workspace(recorder: Recorder, *destinations: dict[str, Any]) -> str:
    amplitude = {"id": "amp", "type": "amplitude", "sources": ["web"],
                 "settings": {"api_key": "amp-key", "endpoint": recorder.base_url}}  # fmt: skip
    return json.dumps({
        "sources": [{"id": "web", "write_keys": [WRITE_KEY]},
                    {"id": "app", "write_keys": [APP_KEY]}],
        "destinations": [amplitude, *destinations],
    })  # fmt: skip


def apply(data_dir: Path, document: str) -> subprocess.CompletedProcess[str]:
    file = data_dir.parent / "workspace.json"
    file.write_text(document)
    return subprocess.run(
        [sys.executable, "-m", "sluice", "apply", str(file), "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def data_dir_with(tmp_path: Path, **installed: Path) -> Path:
    """A fresh data dir whose `device-mode/` and `analytics-js/` are the installed ones."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for folder, root in installed.items():
        name = {"device": DIR_NAME, "analytics": analytics_js.DIR_NAME}[folder]
        (data_dir / name).symlink_to(root / name)
    return data_dir


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def server(
    start_server: StartServer,
    recorder: Recorder,
    tmp_path: Path,
    device_installed: Path,
    analytics_installed: Path,
) -> SluiceServer:
    data_dir = data_dir_with(tmp_path, device=device_installed, analytics=analytics_installed)
    done = apply(data_dir, workspace(recorder, SESSION))
    assert done.returncode == 0, done.stderr
    return start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)


# --- the settings and the files ----------------------------------------------------------------


def test_the_settings_hand_analytics_js_the_plugin_on_this_server(
    server: SluiceServer, device_installed: Path
) -> None:
    entry = DeviceCatalog.load(device_installed).resolve("amplitude-plugins")
    settings = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings").json()
    (plugin,) = settings["remotePlugins"]
    assert plugin == {
        "name": "Amplitude (Actions)",
        "creationName": "Amplitude (Actions)",
        "libraryName": "amplitude-pluginsDestination",
        "url": f"{server.base_url}/next-integrations/actions/{entry.bundle}",
        "settings": {"subscriptions": [{
            "partnerAction": "sessionId", "name": "Session Plugin",
            "subscribe": entry.actions["sessionId"].default_subscription,
            "mapping": {}, "enabled": True,
        }]},
    }  # fmt: skip
    # Its integrations entry must not look like a classic device-mode integration
    # (analytics-next's isInstallableIntegration), or the page would try to load one.
    integration = settings["integrations"]["Amplitude (Actions)"]
    assert integration == {"versionSettings": {"componentTypes": []}}
    other = server.request("GET", f"/v1/projects/{APP_KEY}/settings").json()
    assert other["remotePlugins"] == [] and "Amplitude (Actions)" not in other["integrations"]


def test_sluice_does_not_deliver_a_device_mode_destination(server: SluiceServer) -> None:
    assert server.store.find_cursor("destination:amp-session") is None
    status = subprocess.run(
        [sys.executable, "-m", "sluice", "status", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    destinations = json.loads(status.stdout)["destinations"]
    assert "amp" in destinations and "amp-session" not in destinations


def test_the_bundles_are_the_packages_files(server: SluiceServer, device_installed: Path) -> None:
    web = device_mode.web_dir(device_installed)
    entry = DeviceCatalog.load(device_installed).resolve("Amplitude (Actions)")
    answer = server.request("GET", f"/next-integrations/actions/{entry.bundle}")
    assert answer.status == 200 and answer.body == (web / entry.bundle).read_bytes()
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-type"].startswith("application/javascript")
    zipped = server.request("GET", f"/next-integrations/actions/{entry.bundle}",
                            headers={"accept-encoding": "gzip"})  # fmt: skip
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == answer.body
    chunk = next(p for p in (web / "688").glob("*.js"))
    shared = server.request("GET", f"/next-integrations/actions/688/{chunk.name}")
    assert shared.status == 200 and shared.body == chunk.read_bytes()


@pytest.mark.parametrize(
    "path",
    ["/next-integrations/actions/..%2F..%2Fpackage.json", "/next-integrations/actions/x/nope.js",
     "/next-integrations/actions/manifest-latest.json", "/next-integrations/actions/a.js",
     "/next-integrations/actions/.hidden/a.js", "/next-integrations/actions/amplitude-plugins/"],
    ids=["traversal", "unknown", "not-js", "no-folder", "dotfile", "folder"],
)  # fmt: skip
def test_only_the_built_scripts_are_served(server: SluiceServer, path: str) -> None:
    answer = server.request("GET", path)
    assert answer.status == 404 and answer.json()["code"] == "not_found", answer.body


def test_without_the_install_the_answer_names_the_command(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    answer = server.request("GET", "/next-integrations/actions/amplitude-plugins/x.js")
    assert answer.status == 404 and answer.json()["code"] == "device_mode_not_installed"
    assert "sluice device-mode install" in answer.json()["message"]
    status = subprocess.run(
        [sys.executable, "-m", "sluice", "device-mode", "status", "--data-dir",
         str(server.data_dir)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.returncode == 1 and "sluice device-mode install" in status.stdout


def test_a_disabled_device_destination_is_taken_out_of_the_settings(
    server: SluiceServer, recorder: Recorder
) -> None:
    """`enabled: false` is the kill switch: pages stop loading the bundle at their next load."""
    done = apply(server.data_dir, workspace(recorder, {**SESSION, "enabled": False}))
    assert done.returncode == 0, done.stderr

    def gone() -> bool:
        settings = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings").json()
        return settings["remotePlugins"] == []

    wait_for(gone, 10, what="the settings without the disabled plugin")


def test_the_ui_shows_what_the_page_is_handed(server: SluiceServer) -> None:
    from ui.ui_kit import exchange, signed_in_cookie

    cookie = {"cookie": signed_in_cookie("127.0.0.1", server.port, server.data_dir)}
    listed = exchange("127.0.0.1", server.port, "GET", "/destinations", headers=cookie)[0]
    assert "Amplitude (Actions) · device mode" in listed.body.decode()
    page = exchange("127.0.0.1", server.port, "GET", "/destinations/amp-session", headers=cookie)[0]
    text = page.body.decode()
    assert page.status == 200 and "/next-integrations/actions/amplitude-plugins/" in text
    assert "sessionId" in text and "Runs in the page" in text


# --- what `apply` refuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"type": "no-such-thing"}, "destinations[0].type", "device mode runs these"),
        ({"settings": {"nope": 1}}, "destinations[0].settings.nope", "no such setting"),
        ({"type": "google-analytics-4-web"}, "destinations[0].settings.measurementID",
         "required"),
        ({"filters": [{"if": "all", "drop": True}]}, "destinations[0].filters", "do not apply"),
        ({"delivery": {"concurrency": 2}}, "destinations[0].delivery", "does not deliver"),
        ({"mappings": [{"action": "nope"}]}, "destinations[0].mappings[0].action",
         "no action"),
        ({"mappings": [{"action": "sessionId", "mapping": {"x": 1}}]},
         "destinations[0].mappings[0].mapping.x", "no such field"),
        ({"mappings": [{"action": "sessionId", "trigger": "type = "}]},
         "destinations[0].mappings[0].trigger", "expression ends"),
    ],
    ids=["unknown-type", "unknown-setting", "required-setting", "filters", "delivery",
         "unknown-action", "unknown-field", "bad-trigger"],
)  # fmt: skip
def test_apply_refuses_a_device_destination_that_cannot_work(
    device_installed: Path, change: dict[str, Any], path: str, words: str
) -> None:
    from sluice.bridge import location
    from sluice.workspace.destinations import check_destinations
    from sluice.workspace.errors import WorkspaceError
    from sluice.workspace.files import parse_workspace

    location.use_data_dir(device_installed)
    ws = parse_workspace(json.dumps({"destinations": [{**SESSION, "sources": [], **change}]}), None)
    with pytest.raises(WorkspaceError) as caught:
        check_destinations(ws)
    assert caught.value.path == path and words in caught.value.message, caught.value


def test_apply_without_the_install_names_the_command(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = apply(data_dir, json.dumps({"destinations": [{**SESSION, "sources": []}]}))
    assert done.returncode != 0 and "sluice device-mode install" in done.stderr, done.stderr


# --- in the browser ----------------------------------------------------------------------------


def test_amplitudes_session_plugin_runs_from_sluice_and_the_cloud_destination_sends_its_id(
    server: SluiceServer, recorder: Recorder, device_installed: Path
) -> None:
    entry = DeviceCatalog.load(device_installed).resolve("amplitude-plugins")
    seq = server.store.last_seq()
    asked, _ = track_from_snippet_page(server, "Device Mode Check")
    bundle = f"{server.base_url}/next-integrations/actions/{entry.bundle}"
    assert bundle in asked
    assert any("/next-integrations/actions/688/" in u for u in asked), asked  # its shared chunk
    (stored,) = [p for p in server.payloads_after(seq) if p.get("event") == "Device Mode Check"]
    session_id = stored["integrations"]["Actions Amplitude"]["session_id"]
    assert isinstance(session_id, int) and session_id > 1_600_000_000_000

    def sent() -> list[dict[str, Any]]:
        return [e for r in recorder.requests for e in r.json().get("events", [])
                if e.get("event_type") == "Device Mode Check"]  # fmt: skip

    (amplitude_event,) = wait_for(sent, 20, what="Amplitude's request")
    assert amplitude_event["session_id"] == session_id


def test_a_page_whose_device_bundle_is_broken_still_tracks(
    start_server: StartServer,
    recorder: Recorder,
    tmp_path: Path,
    device_installed: Path,
    analytics_installed: Path,
) -> None:
    """The catalogue names a bundle the server cannot serve (an install half removed): the page
    asks for it in vain, and analytics.js tracks to Sluice all the same."""
    data_dir = data_dir_with(tmp_path, analytics=analytics_installed)
    broken = data_dir / DIR_NAME
    device_mode.web_dir(data_dir).mkdir(parents=True)
    shutil.copyfile(device_installed / DIR_NAME / CATALOG_FILE, broken / CATALOG_FILE)
    assert apply(data_dir, workspace(recorder, SESSION)).returncode == 0
    server = start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)
    settings = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings").json()
    assert settings["remotePlugins"], settings
    seq = server.store.last_seq()
    asked, _ = track_from_snippet_page(
        server, "Still Tracked"
    )  # its 404 is blocked by Chromium's ORB
    assert settings["remotePlugins"][0]["url"] in asked, asked
    (stored,) = [p for p in server.payloads_after(seq) if p.get("event") == "Still Tracked"]
    assert "Actions Amplitude" not in (stored.get("integrations") or {})
