"""Admin API tokens: made by `sluice token create`, stored only as their SHA-256.

A token is shown once, when it is made. The store keeps `ConfigObject("admin_token", id, body)`
objects, a kind `sluice apply` does not manage (so applying a workspace file leaves them alone),
whose body holds the token's hash, a name and when it was made. Revoking a token marks it
revoked rather than deleting the object: the store has no delete of one object, and rewriting
the whole control plane to drop one would race with a concurrent `apply`.

Tokens are long random strings, so a plain SHA-256 is enough (no slow hash: there is nothing
to brute-force). Checking one compares its hash with every stored hash in constant time.

A token has a scope: `admin` (the admin API) or `profile` (the Profile API, read-only access
to profiles). Each API's verifier accepts its own scope only, so a token handed to a service
that reads profiles cannot change the workspace, and an admin token is not a profile reader.
Records made before scopes existed have none on disk and read as `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

import msgspec

from sluice.errors import SluiceError
from sluice.spec.timestamps import format_ms
from sluice.store.base import ConfigObject, EventStore

TOKEN_KIND = "admin_token"
# A recognisable prefix lets secret scanners (and people) tell what a leaked string is.
TOKEN_PREFIX = "sluice_"
TOKEN_BYTES = 32
ID_PREFIX = "tok_"
ID_BYTES = 4
ADMIN = "admin"
PROFILE = "profile"
SCOPES = (ADMIN, PROFILE)


class TokenError(SluiceError):
    """No token has this id, or no such scope."""


class AdminToken(msgspec.Struct, kw_only=True):
    """A token as stored: never the token itself."""

    id: str
    name: str
    sha256: str  # hex digest of the token
    created_at: str
    revoked_at: str | None = None
    scope: str = ADMIN

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_token_decoder = msgspec.json.Decoder(AdminToken)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _now() -> str:
    return format_ms(int(time.time() * 1000))


def list_tokens(store: EventStore) -> list[AdminToken]:
    """Every token, revoked ones included, oldest first."""
    tokens = [_token_decoder.decode(obj.body) for obj in store.list_config(TOKEN_KIND)]
    return sorted(tokens, key=lambda t: (t.created_at, t.id))


def create_token(store: EventStore, name: str = "", scope: str = ADMIN) -> tuple[AdminToken, str]:
    """A new token: its record, and the token itself (the only time it exists in clear)."""
    if scope not in SCOPES:
        raise TokenError(f"unknown token scope {scope!r} (expected one of {', '.join(SCOPES)})")
    taken = {obj.id for obj in store.list_config(TOKEN_KIND)}
    token_id = ID_PREFIX + secrets.token_hex(ID_BYTES)
    while token_id in taken:
        token_id = ID_PREFIX + secrets.token_hex(ID_BYTES)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    record = AdminToken(
        id=token_id, name=name, sha256=_digest(token), created_at=_now(), scope=scope
    )
    _put(store, record)
    return record, token


def revoke_token(store: EventStore, token_id: str) -> AdminToken:
    """Mark the token revoked (revoking it again changes nothing); raises `TokenError`."""
    for record in list_tokens(store):
        if record.id == token_id:
            if record.active:
                record.revoked_at = _now()
                _put(store, record)
            return record
    raise TokenError(f"no admin token has the id {token_id!r}")


def _put(store: EventStore, record: AdminToken) -> None:
    store.put_config(ConfigObject(TOKEN_KIND, record.id, msgspec.json.encode(record)))


class TokenVerifier:
    """Checks bearer tokens against the store, re-reading the tokens only when config changed.

    The control plane's version moves with every change to it, tokens included, so a token
    created or revoked by the CLI counts from the next request of every worker process.
    """

    def __init__(self, store: EventStore, scope: str = ADMIN) -> None:
        self._store = store
        self._scope = scope
        self._lock = threading.Lock()
        self._version = -1
        self._tokens: list[AdminToken] = []

    def _current(self) -> list[AdminToken]:
        version = self._store.config_version()
        with self._lock:
            if version != self._version:
                self._tokens = list_tokens(self._store)
                self._version = version
            return self._tokens

    def verify(self, token: str) -> AdminToken | None:
        """The active token `token` is, or None. Blocking (reads the store)."""
        digest = _digest(token)
        found: AdminToken | None = None
        # Every stored hash is compared, with no early exit: the time taken does not say
        # which token (or how much of a hash) matched.
        for record in self._current():
            matches = hmac.compare_digest(record.sha256, digest)
            if matches and record.active and record.scope == self._scope:
                found = record
        return found
