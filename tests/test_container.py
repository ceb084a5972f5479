"""The container files, tested without a container engine (none runs on the CI machines): the
Dockerfile's runtime layout (non-root, data volume, health check through `sluice ready`), what
its build copies exists and survives .dockerignore, compose.yaml names real settings, and
`sluice ready` answers as the HEALTHCHECK needs, for a server and for a worker-only node."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from server import SluiceServer, StartServer, clean_env, free_port, wait_for
from sluice.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def stages() -> list[list[str]]:
    """The Dockerfile's instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    result: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def test_the_runtime_stage_runs_sluice_as_a_user_with_a_volume_and_a_health_check() -> None:
    build, runtime = stages()
    assert any("gcc" in line for line in build)  # the C extensions compile in the build stage
    assert not any("gcc" in line for line in runtime)
    (user,) = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user not in ("root", "0")
    assert any(line.startswith("RUN useradd") and f" {user}" in line for line in runtime)
    assert 'VOLUME ["/data"]' in runtime
    assert any(line.startswith("ENV") and "SLUICE_DATA_DIR=/data" in line for line in runtime)
    (health,) = [line for line in runtime if line.startswith("HEALTHCHECK")]
    assert health.endswith('CMD ["sluice", "ready"]')
    assert 'ENTRYPOINT ["sluice"]' in runtime and 'CMD ["serve"]' in runtime


def test_what_the_build_copies_exists_and_is_not_ignored() -> None:
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]  # fmt: skip
    copied = []
    for line in stages()[0]:
        if line.startswith("COPY "):
            copied.extend(line.split()[1:-1])
    assert copied
    for name in copied:
        assert (ROOT / name).exists(), name
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name
    for private in (".git", ".venv", "sluice-data", "tests"):
        assert private in ignored


def test_the_locked_requirements_export_as_the_build_does() -> None:
    out = subprocess.run(
        ["uv", "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    names = {line.split("==")[0] for line in out.splitlines() if "==" in line}
    assert {"msgspec", "granian", "duckdb", "psycopg"} <= names
    assert "pytest" not in names


def test_compose_names_only_settings_sluice_has() -> None:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    known = {"SLUICE_" + f.name.upper() for f in dataclasses.fields(Settings)}
    services = document["services"]
    assert "profiles" not in services["sluice"]  # `docker compose up` runs the single node
    for name in ("postgres", "collector", "worker"):
        assert services[name]["profiles"] == ["scale-out"]
    for service in services.values():
        for variable in service.get("environment", {}):
            if variable.startswith("SLUICE_"):
                assert variable in known, variable
    assert services["collector"]["environment"]["SLUICE_ROLE"] == "collector"
    assert services["worker"]["environment"]["SLUICE_ROLE"] == "worker"


def ready(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", "ready", *args],
        env=clean_env(env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_sluice_ready_is_the_servers_readiness(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    env = {"SLUICE_PORT": str(server.port)}
    answer = wait_for(lambda: (r := ready(env)).returncode == 0 and r, 30, what="ready")
    assert answer.stdout.startswith("ready: ")
    nobody = ready({"SLUICE_PORT": str(free_port())})
    assert nobody.returncode == 1 and "not ready: cannot reach" in nobody.stderr


def test_sluice_ready_on_a_worker_node_reads_its_lanes_reports(
    start_server: StartServer, tmp_path: Path
) -> None:
    server: SluiceServer = start_server({"SLUICE_WORKERS": "1"}, args=("--role", "worker"))
    env = {"SLUICE_ROLE": "worker", "SLUICE_DATA_DIR": str(server.data_dir)}
    wait_for(lambda: ready(env).returncode == 0, 30, what="the worker's lanes reported")
    empty = {"SLUICE_ROLE": "worker", "SLUICE_DATA_DIR": str(tmp_path / "nothing")}
    (tmp_path / "nothing").mkdir()
    answer = ready(empty)
    assert answer.returncode == 1 and "not ready: the store: no Sluice store in" in answer.stderr
    assert os.listdir(tmp_path / "nothing") == []
