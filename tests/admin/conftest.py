"""A real server per test module, and an admin token made with the real `sluice token create`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from admin_client import Api, create_token

from server import SluiceServer

# Two HTTP workers: consecutive requests land on different processes, so what the API shows
# must come from the store and the data dir, not from one process's memory. Archive files are
# finalized after a second, so replays have something to read quickly.
ADMIN_ENV = {"SLUICE_WORKERS": "2", "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1"}

StartServer = Callable[..., SluiceServer]


@pytest.fixture(scope="module")
def admin_server(start_module_server: StartServer) -> SluiceServer:
    return start_module_server(ADMIN_ENV)


@pytest.fixture(scope="module")
def token(admin_server: SluiceServer) -> str:
    return create_token(admin_server.data_dir)


@pytest.fixture
def api(admin_server: SluiceServer, token: str) -> Api:
    return Api(admin_server, token)
