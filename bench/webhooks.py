"""Webhook source benchmark: deliveries/s of `POST /v1/hooks/<key>` with verification on, next to
`/v1/track` and a no-op on the same server in the same run (issue 19, "Figures").

    uv run python bench/webhooks.py [--duration 10] [--connections 64] [--workers N]

Starts `sluice serve` (bench/ingest.py's server) with a GitHub webhook source and drives it
with wrk: every request is a 1.2 KB `push` delivery signed as GitHub signs it
(`X-Hub-Signature-256`, HMAC-SHA256 of the body, checked on every request) with its own
`X-GitHub-Delivery`, so each one is verified, mapped to a Spec event and stored (none is a
duplicate). Prints requests/s, latency and how many events the log holds afterwards.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import EVENT_TEMPLATE, LUA_COMMON, LUA_SINGLE, WRITE_KEY, Server, run_wrk

HOOK_KEY = "bench_hook_key_0123456789"
SECRET = "bench-github-secret"
PUSH = json.dumps({
    "ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": "0000000000000000000000000000000000000000", "created": False, "deleted": True,
    "forced": False, "compare": "https://github.com/acme/sluice/compare/6113728f27ae...000000000000",
    "commits": [{"id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "message": "Fix the thing",
                 "timestamp": "2026-12-06T10:00:00Z", "author": {"name": "Ada", "email":
                 "ada@example.com", "username": "ada"}, "added": ["docs/a.md"], "removed": [],
                 "modified": ["src/a.py", "src/b.py"]}],
    "repository": {"id": 186853002, "name": "sluice", "full_name": "acme/sluice",
                   "private": False, "owner": {"login": "acme", "id": 21031067}},
    "pusher": {"name": "ada", "email": "ada@example.com"},
    "sender": {"login": "ada", "id": 21031068, "type": "User"},
}, separators=(",", ":"))  # fmt: skip
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), PUSH.encode(), hashlib.sha256).hexdigest()

LUA_HOOK = (
    (LUA_COMMON % {"template": ""}).replace("%", "%%")
    + """
local body = [==[%(body)s]==]
request = function()
  counter = counter + 1
  local headers = {}
  headers["X-GitHub-Event"] = "push"
  headers["X-GitHub-Delivery"] = prefix .. counter
  headers["X-Hub-Signature-256"] = "%(signature)s"
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/v1/hooks/%(key)s", headers, body)
end
"""
)


def hook_server(workers: int | None) -> Server:
    """bench/ingest.py's server, with a GitHub webhook source besides the bench source."""
    server = Server(workers)
    server.workspace = json.dumps(
        {
            "sources": [
                {"id": "bench", "write_keys": [WRITE_KEY]},
                {
                    "id": "github",
                    "write_keys": [HOOK_KEY],
                    "webhook": {"provider": "github", "secrets": [SECRET]},
                },
            ]
        }
    )  # fmt: skip  (JSON is YAML)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=None, help="server HTTP workers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/webhooks.py needs wrk: apt-get install wrk")
    template = EVENT_TEMPLATE.replace("%", "%%").replace("%%s", "%s")
    scenarios = {
        "noop": LUA_SINGLE % {"template": template, "path": "/healthz"},
        "track": LUA_SINGLE % {"template": template, "path": "/v1/track"},
        "webhook": LUA_HOOK % {"body": PUSH, "signature": SIGNATURE, "key": HOOK_KEY},
    }
    server = hook_server(args.workers)
    server.start()
    results = {}
    try:
        for name, script in scenarios.items():
            before = server.stored_events()
            r = run_wrk(f"http://127.0.0.1:{server.port}/", script, args.duration,
                        args.connections, args.threads)  # fmt: skip
            time.sleep(0.5)
            r["stored_events"] = server.stored_events() - before
            results[name] = r
    finally:
        server.stop()
    print(f"sluice webhook benchmark: {args.connections} connections, {args.duration}s each, "
          f"{args.workers or 'default'} HTTP worker(s), {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'scenario':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
          f"{'stored':>10}")  # fmt: skip
    for name, r in results.items():
        stored = "-" if name == "noop" else f"{r['stored_events']:,}"
        print(f"{name:<10} {r['rps']:>10,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['non2xx']:>8} {stored:>10}")  # fmt: skip
    hook, track = results["webhook"], results["track"]
    print(
        f"webhook vs /v1/track: {hook['rps'] / track['rps']:.0%}; "
        f"target >= 5,000 deliveries/s: {'met' if hook['rps'] >= 5000 else 'NOT met'}"
    )
    if hook["stored_events"] < hook["requests"] - hook["non2xx"]:
        print(
            f"WARNING: {hook['requests'] - hook['non2xx']} acknowledged, "
            f"{hook['stored_events']} stored"
        )


if __name__ == "__main__":
    main()
