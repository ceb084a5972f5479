"""Talking to the admin API of a real server: a bearer token from the real CLI, JSON over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec

from server import OTHER_KEY, WRITE_KEY, Response, SluiceServer

SLUICE = [sys.executable, "-m", "sluice"]
API = "/api/v1"

# The workspace most tests start from (applied through the API itself).
BASE_WORKSPACE: dict[str, Any] = {
    "workspace": "tests",
    "sources": [
        {"id": "app", "write_keys": [OTHER_KEY]},
        {"id": "web", "name": "Web", "write_keys": [WRITE_KEY]},
    ],
    "destinations": [],
    "warehouses": [],
    "tracking_plans": [],
}


def sluice(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `sluice` command on the server's data dir."""
    return subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def create_token(data_dir: Path, name: str = "tests") -> str:
    out = sluice(data_dir, "token", "create", "--name", name)
    (token,) = out.stdout.split()
    return token


class Api:
    """Requests to `/api/v1` with `Authorization: Bearer <token>`."""

    def __init__(self, server: SluiceServer, token: str) -> None:
        self.server = server
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        query: dict[str, str] | None = None,
    ) -> Response:
        if query:
            path = f"{path}?{urlencode(query)}"
        all_headers = {"Authorization": f"Bearer {token or self.token}"}
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else msgspec.json.encode(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return self.server.request(method, API + path, data, all_headers)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.call("DELETE", path, **kwargs)

    def ok(self, response: Response, status: int = 200) -> Any:
        """The response's JSON, after checking its status."""
        assert response.status == status, (response.status, response.body)
        return response.json() if response.body else None

    def reset(self) -> None:
        """Apply the base workspace (every test that changes the workspace starts here)."""
        self.ok(self.put("/workspace", BASE_WORKSPACE))
