"""The egress policy: destinations never reach a denied network (by default link-local, where
clouds serve instance metadata), by IP or by a name resolving there; refused events are parked
with the reason, never retried, and nothing is sent."""

from __future__ import annotations

import asyncio
import json

import pytest

from delivery.delivery_kit import add_destination, send, sluice, track, webhook
from recorder import Recorder
from server import StartServer, wait_for
from sluice.config import ConfigError, load_settings
from sluice.delivery.egress import EgressDenied, EgressPolicy, PolicyResolver


def test_the_policy_by_address() -> None:
    default = EgressPolicy.from_settings(load_settings({}))
    assert default.refusal("169.254.169.254") is not None
    assert default.refusal("fe80::1") is not None
    assert default.refusal("10.1.2.3") is None and default.refusal("127.0.0.1") is None
    assert default.url_refusal("http://169.254.169.254/latest/meta-data/") is not None
    assert default.url_refusal("http://[fe80::1%25eth0]:80/") is not None
    assert default.url_refusal("https://api.example.com/x") is None  # names: at resolution
    narrow = EgressPolicy.from_settings(load_settings({"SLUICE_EGRESS_ALLOW": "10.0.0.0/8",
                                                       "SLUICE_EGRESS_DENY": "none"}))  # fmt: skip
    assert narrow.refusal("10.9.9.9") is None and narrow.refusal("169.254.1.1") is not None
    assert "SLUICE_EGRESS_ALLOW" in (narrow.refusal("127.0.0.1") or "")
    with pytest.raises(ConfigError, match="SLUICE_EGRESS_DENY"):
        load_settings({"SLUICE_EGRESS_DENY": "metadata"})


def test_a_name_resolving_to_a_denied_network_is_refused() -> None:
    policy = EgressPolicy.from_settings(load_settings({"SLUICE_EGRESS_ALLOW": "10.0.0.0/8"}))

    async def resolve() -> None:
        resolver = PolicyResolver(policy)
        try:
            await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(EgressDenied, match="localhost resolves there"):
        asyncio.run(resolve())


def parked(server: object) -> list[dict[str, object]]:
    text = sluice(server, "parked", "list", "--json")  # type: ignore[arg-type]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_destinations_never_reach_a_denied_network(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = start_server({"SLUICE_WORKERS": "1",
                           "SLUICE_EGRESS_DENY": "169.254.0.0/16,127.0.0.2/32"})  # fmt: skip
    metadata = webhook("meta", recorder)
    metadata["settings"] = {"urls": ["http://169.254.169.254/latest/meta-data/iam"]}
    by_name = webhook("named", recorder)  # 127.0.0.2 is loopback too, but denied here
    by_name["settings"] = {"urls": [f"http://127.0.0.2:{recorder.port}/x"]}
    allowed = webhook("fine", recorder)
    for doc in (metadata, by_name, allowed):
        add_destination(server, doc)
    send(server, track("e-1"))
    entries = wait_for(lambda: (p := parked(server)) and len(p) >= 2 and p, 30, what="parks")
    reasons = {e["destination"]: str(e["reason"]) for e in entries}
    assert set(reasons) == {"meta", "named"}
    assert all("egress_denied" in r and "SLUICE_EGRESS_DENY" in r for r in reasons.values())
    wait_for(lambda: [r for r in recorder.requests if r.path == "/fine"], 30, what="the allowed")
    assert [r.path for r in recorder.requests] == ["/fine"]  # nothing reached the others
    retrying = sluice(server, "retrying", "list", "--json")
    assert "e-1" not in retrying  # parked at once: a policy does not heal by retrying
