"""A real S3-compatible server for tests and benchmarks: moto's standalone server, in a subprocess.

Every S3 test talks HTTP to this server through the real client (nothing is mocked), so what
is tested is what runs against AWS S3, MinIO, GCS or R2. Use the `s3_server` fixture (add
`from s3server import s3_server_fixture  # noqa: F401` to a test module, or call `start_s3_server`
from a benchmark): it starts the server on a free loopback port, waits until it answers, and
kills it at the end. `S3Server.settings(bucket)` gives object-store settings aimed at it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ports import free_port
from sluice.objectstore import ObjectStore, ObjectStoreSettings

REGION = "us-east-1"
START_TIMEOUT_S = 30.0


@dataclass
class S3Server:
    """A running moto server: its URL and process."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def settings(self, bucket: str, **changes: object) -> ObjectStoreSettings:
        values: dict[str, object] = {
            "bucket": bucket,
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "path_style": True,
        }
        values.update(changes)
        return ObjectStoreSettings(**values)  # type: ignore[arg-type]

    def client(self, bucket: str, **changes: object) -> ObjectStore:
        return ObjectStore(self.settings(bucket, **changes))

    def new_bucket(self) -> str:
        """Create a bucket with a fresh name (tests share the server, never a bucket)."""
        name = f"b-{uuid.uuid4().hex[:16]}"
        self.client(name).create_bucket()
        return name

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def start_s3_server(port: int | None = None) -> S3Server:
    """Start moto's server on a loopback port and wait until it answers."""
    port = port or free_port()
    env = dict(os.environ)
    # Wrong keys must be refused as AWS refuses them: past its first INITIAL_NO_AUTH_ACTION_COUNT
    # requests moto checks every signature against the IAM keys it knows. Those first requests
    # create a user with an access key allowed everything (`_create_user`).
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(len(_SETUP_ACTIONS))
    env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "false"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto server did not start on {url}") from None
            time.sleep(0.05)
    try:
        key_id, secret = _create_user(url)
    except BaseException:
        process.kill()
        raise
    return S3Server(url, process, key_id, secret)


_SETUP_ACTIONS = ("CreateUser", "CreateAccessKey", "PutUserPolicy")
_ALLOW_ALL = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
)


def _create_user(url: str) -> tuple[str, str]:
    """An IAM user allowed everything, and its access key (moto's first, unchecked requests)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="sluice")
    key = iam.create_access_key(UserName="sluice")["AccessKey"]
    iam.put_user_policy(UserName="sluice", PolicyName="all", PolicyDocument=_ALLOW_ALL)
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


class FaultyProxy:
    """A TCP proxy in front of the S3 server that can misbehave like a real network or endpoint:

    - `mode = "pass"`: forwards everything;
    - `mode = "refuse"`: closes every new connection at once (the endpoint is down);
    - `mode = "stall"`: forwards the first chunk of the next request that uploads (a `PUT` or a
      multipart `POST`) and holds the rest, so that upload is in flight until its client dies.
    `stalled` is set once an upload is held.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.stalled = threading.Event()
        self._server = socket.create_server(("127.0.0.1", free_port()))
        self.endpoint_url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                if requests and self.mode == "stall" and chunk.startswith((b"PUT ", b"POST ")):
                    self.stalled.set()
                    while not self._closed:  # hold the rest of this upload forever
                        time.sleep(0.05)
                    return
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
