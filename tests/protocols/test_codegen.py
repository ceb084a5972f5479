"""Typed clients from a tracking plan (`sluice protocols codegen`) and the CI check of a file of
events (`sluice protocols check`). The generated Python is type-checked by mypy (a misuse is an
error on its line) and then run with the real analytics-python client against a real server
enforcing the same plan; the generated TypeScript is type-checked by `tsc` against the real
analytics-next and analytics-node types, and run with analytics-node against the server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from segment.analytics.client import Client

from server import SluiceServer, StartServer, wait_for

KEY = "wk_codegen_protocols_1"
JS = Path(__file__).parent.parent / "js"
TSC = JS / "node_modules" / ".bin" / "tsc"

ORDER = {
    "type": "object",
    "properties": {
        "properties": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string", "description": "the order's id"},
                "revenue": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "coupon code": {"type": ["string", "null"]},
                "tier": {"enum": ["gold", "silver"]},
                "products": {"type": "array", "items": {
                    "type": "object", "required": ["product_id"],
                    "properties": {"product_id": {"type": "string"},
                                   "quantity": {"type": "integer"}}}},
            },
            "required": ["order_id", "currency"],
        }
    },
}  # fmt: skip
WORKSPACE = {
    "sources": [{"id": "web", "write_keys": [KEY]}],
    "tracking_plans": [{
        "id": "shop", "name": "Shop", "sources": ["web"],
        "rules": {
            "events": [
                {"name": "Order Completed", "rules": {}},
                {"name": "Order Completed", "version": 2, "description": "Paid.", "rules": ORDER},
                {"name": "Home", "type": "page", "rules": {"properties": {"properties": {
                    "properties": {"path": {"type": "string"}}}}}},
            ],
            "identify": {"properties": {"traits": {"type": "object", "required": ["email"],
                         "properties": {"email": {"type": "string", "format": "email"}}}}},
        },
        "enforcement": {"unplanned_events": "block", "violations": "block"},
    }],
}  # fmt: skip


def sluice(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sluice", *args], capture_output=True,
                          text=True, input=stdin)  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("codegen") / "workspace.json"
    file.write_text(json.dumps(WORKSPACE))
    return file


@pytest.fixture(scope="module")
def server(
    start_module_server: StartServer, workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> SluiceServer:
    data = tmp_path_factory.mktemp("codegen-server") / "data"
    done = sluice("apply", str(workspace), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    return start_module_server({"SLUICE_WORKERS": "1"}, data_dir=data)


def generate(workspace: Path, out: Path, *args: str) -> None:
    done = sluice("protocols", "codegen", "--plan", "shop", "--workspace", str(workspace),
                  "--out", str(out), *args)  # fmt: skip
    assert done.returncode == 0, done.stderr


# --- Python --------------------------------------------------------------------------------

USE_WELL = """
    from shop_tracking import identify, order_completed, page_home

    def send(client: object) -> None:
        order_completed(
            {"order_id": "o1", "currency": "EUR", "revenue": 25, "coupon code": None,
             "tier": "gold", "products": [{"product_id": "p1", "quantity": 2}]},
            user_id="u1", message_id="cg-py-1", client=client,
        )
        page_home({"path": "/"}, user_id="u1", category="Docs", message_id="cg-py-2",
                  client=client)
        identify({"email": "a@example.com"}, user_id="u1", message_id="cg-py-3", client=client)
"""
USE_BADLY = """
    from shop_tracking import order_completed

    order_completed({"order_id": 5, "currency": "EUR"}, user_id="u1")  # line 3
    order_completed({"order_id": "o1"}, user_id="u1")  # line 4: currency is required
    order_completed({"order_id": "o1", "currency": "EUR", "coupon": "x"})  # line 5
    order_completed({"order_id": "o1", "currency": "EUR", "tier": "bronze"})  # line 6
    order_completed({"order_id": "o1", "currency": "EUR", "products": [{"quantity": 1}]})  # 7
"""


def mypy(package_dir: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    (package_dir / f"{name}.py").write_text(textwrap.dedent(text).lstrip("\n"))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", "/dev/null",
         f"{name}.py"], cwd=package_dir, capture_output=True, text=True,
    )  # fmt: skip


def test_generated_python_is_typed(workspace: Path, tmp_path: Path) -> None:
    generate(workspace, tmp_path / "shop_tracking", "--lang", "python")
    good = mypy(tmp_path, "use_well", USE_WELL)
    assert good.returncode == 0, good.stdout
    bad = mypy(tmp_path, "use_badly", USE_BADLY)
    assert bad.returncode == 1
    lines = {int(n) for n in re.findall(r"use_badly\.py:(\d+): error", bad.stdout)}
    assert lines == {3, 4, 5, 6, 7}, bad.stdout


def test_generated_python_sends_what_the_plan_accepts(
    workspace: Path, server: SluiceServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(workspace, tmp_path / "shop_tracking", "--lang", "python")
    (tmp_path / "use_well.py").write_text(textwrap.dedent(USE_WELL))
    monkeypatch.syspath_prepend(str(tmp_path))
    import use_well  # type: ignore[import-not-found]

    errors: list[Any] = []
    client = Client(KEY, host=server.base_url, sync_mode=True,
                    on_error=lambda e, b: errors.append(e))  # fmt: skip
    use_well.send(client)
    assert errors == []
    found = wait_for(lambda: all(server.store.find_events(f"cg-py-{i}") for i in (1, 2, 3)),
                     what="the generated calls")  # fmt: skip
    assert found
    [order] = [json.loads(e.payload) for e in server.store.find_events("cg-py-1")]
    assert order["event"] == "Order Completed"
    assert order["properties"]["products"] == [{"product_id": "p1", "quantity": 2}]
    # the version it was written for, and nothing the plan (violations: block) objected to
    assert order["context"]["protocols"] == {"event_version": 2}
    [page] = [json.loads(e.payload) for e in server.store.find_events("cg-py-2")]
    assert (page["name"], page["category"], page["properties"]) == ("Home", "Docs", {"path": "/"})
    assert "protocols" not in page["context"]


# --- TypeScript ----------------------------------------------------------------------------

USE_NODE = """
import { Analytics } from '@segment/analytics-node'
import * as t from './node/index'

const analytics = new Analytics({ writeKey: 'KEY', host: 'HOST', flushAt: 1, maxRetries: 1 })
t.orderCompleted(analytics, { order_id: 'o1', currency: 'EUR', tier: 'silver',
                              products: [{ product_id: 'p1' }] },
                 { userId: 'u1', messageId: 'cg-ts-1' })
t.identify(analytics, { email: 'a@example.com' }, { anonymousId: 'a1', messageId: 'cg-ts-2' })
export function misuse(): void {  // type-checked, never run
  // @ts-expect-error a wrong type
  t.orderCompleted(analytics, { order_id: 5, currency: 'EUR' }, { userId: 'u1' })
  // @ts-expect-error a required property missing
  t.orderCompleted(analytics, { order_id: 'o1' }, { userId: 'u1' })
  // @ts-expect-error a property the plan does not have
  t.orderCompleted(analytics, { order_id: 'o1', currency: 'EUR', coupon: 'x' }, { userId: 'u1' })
  // @ts-expect-error neither userId nor anonymousId
  t.orderCompleted(analytics, { order_id: 'o1', currency: 'EUR' }, {})
}
analytics.closeAndFlush().then(() => console.log('flushed'))
"""
USE_NEXT = """
import { AnalyticsBrowser } from '@segment/analytics-next'
import * as t from './next/index'

export function send(analytics: AnalyticsBrowser): void {
  t.orderCompleted(analytics, { order_id: 'o1', currency: 'EUR' }, { context: { app: {} } })
  t.pageHome(analytics, { path: '/' }, { category: 'Docs' })
  t.identify(analytics, 'u1', { email: 'a@example.com' })
  // @ts-expect-error an event version's property of the wrong type
  t.orderCompleted(analytics, { order_id: 'o1', currency: 'EUR', revenue: '25' })
}
"""


@pytest.mark.skipif(not TSC.exists(), reason="tests/js has no typescript: npm ci --prefix tests/js")
def test_generated_typescript_is_typed_and_sends_with_analytics_node(
    workspace: Path, server: SluiceServer, tmp_path: Path
) -> None:
    # Inside tests/js, so the real libraries' types and code resolve from its node_modules.
    work = Path(JS / f"_codegen_{tmp_path.name}")
    try:
        generate(workspace, work / "node", "--lang", "typescript", "--sdk", "analytics-node")
        generate(workspace, work / "next", "--lang", "typescript")
        use_node = USE_NODE.replace("KEY", KEY).replace("HOST", server.base_url)
        (work / "use_node.ts").write_text(use_node)
        (work / "use_next.ts").write_text(USE_NEXT)
        done = subprocess.run(
            [str(TSC), "--strict", "--target", "es2020", "--module", "commonjs",
             "--moduleResolution", "node", "--esModuleInterop", "--skipLibCheck",
             "--outDir", str(work / "out"), "use_node.ts", "use_next.ts"],
            cwd=work, capture_output=True, text=True,
        )  # fmt: skip
        # Each @ts-expect-error line is an error, or tsc reports the directive unused.
        assert done.returncode == 0, done.stdout
        run = subprocess.run(
            ["node", str(work / "out" / "use_node.js")],
            cwd=work, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0 and "flushed" in run.stdout, run.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wait_for(lambda: server.store.find_events("cg-ts-2"), what="analytics-node's calls")
    [order] = [json.loads(e.payload) for e in server.store.find_events("cg-ts-1")]
    assert order["properties"]["tier"] == "silver"
    assert order["context"]["protocols"] == {"event_version": 2}
    assert order["context"]["library"]["name"] == "@segment/analytics-node"


# --- sluice protocols check ----------------------------------------------------------------

EVENTS = [
    {"type": "track", "event": "Order Completed", "userId": "u1",
     "context": {"protocols": {"event_version": 2}},
     "properties": {"order_id": "o1", "currency": "EUR"}},
    {"type": "track", "event": "Order Completed", "userId": "u1",
     "context": {"protocols": {"event_version": 2}},
     "properties": {"order_id": "o1", "currency": "eur", "revenue": "5", "extra": 1}},
    {"type": "track", "event": "Signed Up", "userId": "u1"},
    {"type": "identify", "userId": "u1", "traits": {}},
]  # fmt: skip


def test_check_lists_every_problem_by_line_and_fails(workspace: Path, tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    lines = [json.dumps(e) for e in EVENTS]
    file.write_text("\n".join([*lines[:2], "", lines[2], "{not json", lines[3]]) + "\n")
    done = sluice("protocols", "check", str(file), "--plan", "shop", "--workspace", str(workspace))
    assert done.returncode == 1
    out = done.stdout.splitlines()
    assert f"{file}:2: 'Order Completed' properties.extra: Unplanned property:" \
           " not planned for this event" in out  # fmt: skip
    assert f"{file}:2: 'Order Completed' properties.currency: Invalid Value:" \
           " properties.currency must match pattern ^[A-Z]{3}$" in out  # fmt: skip
    assert any(line.startswith(f"{file}:2: 'Order Completed' properties.revenue: Invalid Type")
               for line in out)  # fmt: skip
    assert f"{file}:4: 'Signed Up': Unplanned event: not in the tracking plan" in out
    assert any(line.startswith(f"{file}:5: Invalid event: not JSON") for line in out)
    assert f"{file}:6: 'identify' traits.email: Required: Missing required property 'email'" in out
    assert not any(line.startswith(f"{file}:1:") for line in out)
    assert "6 problems in 4 events" in done.stderr


def test_check_passes_a_clean_file_and_can_allow_unplanned(workspace: Path) -> None:
    stdin = json.dumps(EVENTS[0]) + "\n" + json.dumps(EVENTS[2]) + "\n"
    args = ("protocols", "check", "-", "--plan", "shop", "--workspace", str(workspace))
    assert sluice(*args, stdin=stdin).returncode == 1
    done = sluice(*args, "--allow-unplanned-events", stdin=stdin)
    assert done.returncode == 0, done.stdout
    assert "every event follows tracking plan 'shop'" in done.stderr


def test_codegen_and_check_name_an_unknown_plan(workspace: Path, tmp_path: Path) -> None:
    done = sluice("protocols", "codegen", "--plan", "nope", "--lang", "python", "--out",
                  str(tmp_path), "--workspace", str(workspace))  # fmt: skip
    assert done.returncode == 2
    assert f"{workspace}: no tracking plan 'nope' (plans: shop)" in done.stderr
