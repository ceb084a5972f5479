"""analytics.js served by Sluice (issue 19, scope 2): `sluice analytics-js install` puts the pinned
analytics-next into the data dir, and the server answers the paths Segment's CDN uses: the
standalone build at `/analytics.js/v1/<writeKey>/analytics.min.js` and its chunks under
`/analytics-next/bundles/`, byte for byte the package's files (gzip when accepted)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from browser import track_from_snippet_page
from npm_installs import installed_once
from server import WRITE_KEY, SluiceServer, StartServer, seed_sources
from sluice.analyticsjs.install import DIR_NAME, install, lock_sha256, umd_dir


@pytest.fixture(scope="session")
def installed() -> Path:
    """A data dir with analytics-next installed, once per lockfile (like the bridge's)."""
    return installed_once("analytics-js", lock_sha256(), install)


@pytest.fixture
def server(start_server: StartServer, installed: Path, tmp_path: Path) -> SluiceServer:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    seed_sources(data_dir)
    (data_dir / DIR_NAME).symlink_to(installed / DIR_NAME)
    return start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)


def test_the_script_and_its_chunks_are_the_packages_files(
    server: SluiceServer, installed: Path
) -> None:
    folder = umd_dir(installed)
    script = server.request("GET", f"/analytics.js/v1/{WRITE_KEY}/analytics.min.js")
    assert script.status == 200
    assert script.body == (folder / "standalone.js").read_bytes()
    assert script.headers["content-type"].startswith("application/javascript")
    assert script.headers["access-control-allow-origin"] == "*"
    assert script.headers["cache-control"] == "public, max-age=300"

    zipped = server.request("GET", f"/analytics.js/v1/{WRITE_KEY}/analytics.min.js",
                            headers={"accept-encoding": "gzip"})  # fmt: skip
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == script.body

    bundle = next(p.name for p in folder.glob("*.bundle.*.js"))
    chunk = server.request("GET", f"/analytics-next/bundles/{bundle}")
    assert chunk.status == 200 and chunk.body == (folder / bundle).read_bytes()
    assert chunk.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path",
    ["/analytics-next/bundles/..%2F..%2Fpackage.json", "/analytics-next/bundles/nope.js",
     "/analytics-next/bundles/", "/analytics.js/v1//analytics.min.js",
     "/analytics-next/bundles/.hidden.js"],
    ids=["traversal", "unknown", "empty", "no-key", "dotfile"],
)  # fmt: skip
def test_only_the_packages_scripts_are_served(server: SluiceServer, path: str) -> None:
    answer = server.request("GET", path)
    assert answer.status == 404 and answer.json()["code"] == "not_found", answer.body


def test_without_the_install_the_answer_names_the_command(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    answer = server.request("GET", f"/analytics.js/v1/{WRITE_KEY}/analytics.min.js")
    assert answer.status == 404 and answer.json()["code"] == "analytics_js_not_installed"
    assert "sluice analytics-js install" in answer.json()["message"]
    status = subprocess.run(
        [sys.executable, "-m", "sluice", "analytics-js", "status", "--data-dir",
         str(server.data_dir)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.returncode == 1 and "sluice analytics-js install" in status.stdout


def test_the_ui_snippet_loads_the_script_from_sluice_once_installed(server: SluiceServer) -> None:
    from sluice.ui.snippets import snippets

    base = server.base_url
    served = snippets(base, WRITE_KEY, self_hosted=True).analytics_js
    assert f'"{base}/analytics.js/v1/" + key' in served and "cdn.segment.com" not in served
    cdn = snippets(base, WRITE_KEY).analytics_js
    assert '"https://cdn.segment.com/analytics.js/v1/" + key' in cdn


def test_a_page_naming_only_sluice_tracks_and_contacts_no_other_host(
    server: SluiceServer,
) -> None:
    """In Debian's Chromium: a page (served from another origin) holding only the UI's snippet,
    with analytics.js installed, loads the script, its settings and sends its calls to Sluice,
    and asks nothing of any other host (Segment's CDN included)."""
    asked, _ = track_from_snippet_page(server, "Served By Sluice")
    assert any("/analytics.js/v1/" in u and u.startswith(server.base_url) for u in asked)
