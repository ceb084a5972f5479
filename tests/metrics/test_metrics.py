"""`/metrics`: a real server over loopback, scraped as Prometheus would.

What an operator alerts on must add up: requests spread over two HTTP worker processes are all
counted (multiprocess files), events stored/rejected/duplicate match what was sent, a
destination that is down shows its open circuit and lag, one that refuses shows parked events,
warehouse loads and worker leases are there; the endpoint refuses remote scrapers unless allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recorder import Recorded, Recorder, Reply
from server import WRITE_KEY, SluiceServer, StartServer, wait_for
from sluice.config import ConfigError, Settings, load_settings
from sluice.metrics.cluster import ClusterCollector
from sluice.metrics.endpoint import MetricsEndpoint
from sluice.metrics.names import CLUSTER
from sluice.store.base import ConfigObject
from sluice.store.factory import open_store

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for metric in text_string_to_metric_families(text):
        for s in metric.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def scrape(server: SluiceServer, headers: Mapping[str, str] | None = None) -> Samples:
    res = server.request("GET", "/metrics", headers=headers)
    assert res.status == 200, res.body
    return parse(res.body.decode())


def put_destination(server: SluiceServer, dest_id: str, url: str) -> None:
    doc = {"id": dest_id, "type": "webhook", "sources": ["web"], "settings": {"urls": [url]}}
    server.store.put_config(ConfigObject("destination", dest_id, msgspec.json.encode(doc)))


# --- settings ---------------------------------------------------------------------------------
def test_settings_are_checked_and_the_token_never_shown() -> None:
    settings = load_settings({"SLUICE_METRICS_ALLOW": "10.0.0.0/8, 192.168.1.7",
                              "SLUICE_METRICS_TOKEN": "s3cret-token"})  # fmt: skip
    assert settings.metrics_allow == ("10.0.0.0/8", "192.168.1.7")
    assert "s3cret-token" not in repr(settings)
    assert load_settings({}).metrics_allow == ("127.0.0.0/8", "::1/128")
    with pytest.raises(ConfigError, match="SLUICE_METRICS_ALLOW: 'intranet'"):
        load_settings({"SLUICE_METRICS_ALLOW": "intranet"})


def test_every_cluster_metric_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    for spec in CLUSTER.values():
        name = spec.name + ("_total" if spec.kind == "counter" else "")
        assert f"`{name}`" in doc, f"docs/metrics.md does not describe {name}"


# --- a real server ----------------------------------------------------------------------------
def test_a_scrape_adds_up_across_processes(start_server: StartServer, recorder: Recorder) -> None:
    def answer(request: Recorded) -> Reply:
        return {"/ok": Reply(200), "/bad": Reply(400, b'{"error": "no"}')}.get(
            request.path, Reply(500)
        )

    recorder.respond_with(answer)
    server = start_server({"SLUICE_WORKERS": "2", "SLUICE_WAREHOUSE_INTERVAL_S": "1"})
    for dest, path in (("ok", "/ok"), ("bad", "/bad"), ("down", "/down")):
        put_destination(server, dest, f"{recorder.base_url}{path}")

    def delivery_leases() -> float:
        return total(scrape(server), "sluice_worker_leases", lane="delivery")

    # A new destination starts at the log's end when its consumer starts: wait for the three.
    wait_for(lambda: delivery_leases() == 3, timeout=30, what="the destinations to start")
    requests = 40
    for n in range(requests):
        batch = [
            {"type": "track", "event": "Clicked", "userId": f"u{n}", "messageId": f"t{n}"},
            {"type": "identify", "userId": f"u{n}", "messageId": f"i{n}"},
            {"type": "track", "userId": f"u{n}"},  # no event name: rejected
        ]
        assert server.post("/v1/batch", {"batch": batch}).status == 200
    assert server.post("/v1/track", {"type": "track", "event": "Again", "userId": "u0",
                                     "messageId": "t0"}).status == 200  # fmt: skip
    assert server.post("/v1/batch", {"batch": []}, key="wk_nobody_12345").status == 401
    assert server.post("/v1/batch", b"{not json").status == 400

    def settled() -> Samples | None:
        s = scrape(server)
        ready = (
            value(s, "sluice_destination_delivered_total", destination="ok") == 2 * requests
            and total(s, "sluice_destination_parked_total", destination="bad") == 2 * requests
            and value(s, "sluice_destination_circuit_open", destination="down") == 1
            and value(s, "sluice_warehouse_events_total", warehouse="default") >= 2 * requests
            and value(s, "sluice_events_received_total", source="web") >= 3 * requests + 1
        )
        return s if ready else None

    s = wait_for(settled, timeout=60, interval=0.5, what="deliveries, parks, a load")
    # Every request, whichever of the two HTTP processes answered it.
    assert total(s, "sluice_ingest_responses_total") == requests + 3
    assert value(s, "sluice_ingest_responses_total", status="401") == 1
    assert value(s, "sluice_ingest_request_duration_seconds_count", kind="batch") == requests + 2
    assert value(s, "sluice_store_commit_events_sum") == 2 * requests + 1  # a duplicate too
    assert value(s, "sluice_events_stored_total", source="web", type="track") == requests
    assert value(s, "sluice_events_stored_total", source="web", type="identify") == requests
    assert value(s, "sluice_events_duplicate_total", source="web") == 1
    assert total(s, "sluice_events_rejected_total", source="web") == requests
    assert value(s, "sluice_requests_rejected_total", source="(none)", code="unauthorized") == 1
    assert total(s, "sluice_requests_rejected_total", code="invalid_json") == 1
    # Delivery: latency histogram of what was delivered, lag of what was not.
    # (No _sum or _count: the store keeps bucket counts only; +Inf is the count.)
    count = value(s, "sluice_delivery_duration_seconds_bucket", destination="ok", le="+Inf")
    assert count == 2 * requests
    assert value(s, "sluice_delivery_duration_seconds_bucket", destination="ok", le="60") == count
    assert value(s, "sluice_destination_parked_events", destination="bad") == 2 * requests
    assert value(s, "sluice_destination_paused", destination="down") == 1
    down_lag = value(s, "sluice_destination_retrying_events", destination="down", state="retrying")
    assert down_lag + value(s, "sluice_destination_lag_events", destination="down") > 0
    assert value(s, "sluice_destination_lag_events", destination="ok") == 0
    assert value(s, "sluice_warehouse_loads_total", warehouse="default", outcome="ok") >= 1
    # Worker processes: the delivery lane holds the three destinations, the batch lane the rest.
    leases = {dict(ls)["lane"]: v for (n, ls), v in s.items() if n == "sluice_worker_leases"}
    assert leases["delivery"] == 3 and leases["batch"] >= 2
    assert value(s, "sluice_metrics_store_up") == 1
    assert WRITE_KEY not in server.request("GET", "/metrics").body.decode()


def test_remote_scrapers_need_an_allowed_network_or_the_token(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1", "SLUICE_METRICS_ALLOW": "10.0.0.0/8",
                           "SLUICE_METRICS_TOKEN": "scrape-token-1"})  # fmt: skip
    refused = server.request("GET", "/metrics")
    assert refused.status == 403 and refused.json()["code"] == "metrics_forbidden"
    assert "SLUICE_METRICS_ALLOW" in refused.json()["message"]
    wrong = server.request("GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and wrong.json()["code"] == "invalid_metrics_token"
    assert "scrape-token-1" not in wrong.body.decode()
    ok = server.request("GET", "/metrics", headers={"Authorization": "Bearer scrape-token-1"})
    assert ok.status == 200 and ok.headers["content-type"].startswith("text/plain")
    assert "scrape-token-1" not in server.log()


def test_counts_survive_a_restart_and_old_process_files_go(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    assert server.post("/v1/track", {"event": "A", "userId": "u"}).status == 200
    wait_for(lambda: value(scrape(server), "sluice_events_stored_total", source="web",
                           type="track") == 1, 10)  # fmt: skip
    server.stop()
    server.start()
    s = scrape(server)
    assert value(s, "sluice_events_stored_total", source="web", type="track") == 1
    assert value(s, "sluice_ingest_responses_total", status="200") == 0  # a new invocation
    assert [p.name for p in (server.data_dir / "run").iterdir()] == [f"metrics-{server.proc.pid}"]


# --- the store's view on its own ----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_cluster_view_reads_either_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    store = open_store(Settings(data_dir=tmp_path, database_url=url))
    try:
        store.record_unit_stats(
            "warehouse:default", 1_000, {"loads": 1, "rows": 5}, {"position": 3}
        )
        store.record_unit_stats(
            "warehouse:default", 2_000, {"loads": 1, "rows": 2}, {"position": 9}
        )
        assert store.unit_stats()["warehouse:default"] == {"loads": 2, "rows": 7, "position": 9}
        names = {m.name for m in ClusterCollector(store).collect()}
        assert {"sluice_warehouse_rows", "sluice_worker_leases", "sluice_events_stored"} <= names
        store.forget_unit_stats("warehouse:default")
        assert store.unit_stats() == {}
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_that_cannot_be_read_is_a_metric_not_an_error(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    store = open_store(settings)
    endpoint = MetricsEndpoint(settings, store)
    assert value(parse(endpoint.render().decode()), "sluice_metrics_store_up") == 1
    endpoint.close()
    store.close()
    if backend == "sqlite":  # its own connection (closed above) opens again: take the file away
        (tmp_path / "data").rename(tmp_path / "gone")
        (tmp_path / "data").write_text("not a directory")
        endpoint = MetricsEndpoint(settings, store)
    samples = parse(endpoint.render().decode())
    assert value(samples, "sluice_metrics_store_up") == 0
    assert ("sluice_store_commit_failures_total", frozenset()) in samples
