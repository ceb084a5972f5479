"""Fuzzing the Tracking API on both backends: no input gets a 5xx, valid neighbours of bad items
are stored, the server stays up. A bounded run here; `bench/fuzz.py` runs 100,000 requests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_fuzz_kit import request_body
from server import SluiceServer, StartServer, seed_sources


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(
    request: pytest.FixtureRequest,
    start_module_server: StartServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> SluiceServer:
    data_dir = tmp_path_factory.mktemp("fuzz") / "node"
    env = {"SLUICE_WORKERS": "2", "SLUICE_WAREHOUSE_INTERVAL_S": "0"}
    url = None
    if request.param == "postgres":
        admin = request.getfixturevalue("pg_admin")
        name = f"sluice_fuzz_{random.getrandbits(40):x}"
        admin.execute(f'CREATE DATABASE "{name}"')
        request.addfinalizer(lambda: admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        env["SLUICE_DATABASE_URL"] = url
    seed_sources(Path(data_dir), database_url=url)
    return start_module_server(env, data_dir=data_dir)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
@given(rng=st.randoms(use_true_random=False))
def test_no_input_gets_a_5xx_and_valid_neighbours_are_stored(
    fuzz_server: SluiceServer, rng: random.Random
) -> None:
    body, good = request_body(rng)
    res = fuzz_server.post("/v1/batch", body)
    assert res.status < 500, res.body
    if res.status == 200:
        for message_id in good:
            assert fuzz_server.store.find_events(message_id), message_id
    assert fuzz_server.request("GET", "/healthz").status == 200
