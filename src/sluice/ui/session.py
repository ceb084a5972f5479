"""Signed-cookie sessions and CSRF tokens: nothing about a signed-in browser lives in a process.

`sluice serve` runs several HTTP worker processes and any of them may answer a browser's next
request, so a session is a cookie the server signed (HMAC-SHA256 with the key in the store):
who, until when, a nonce for CSRF tokens, and a tag of the admin's password hash (a new
password ends the old sessions). Signing out deletes the cookie.

CSRF: every form carries a token, and every POST is refused (403) without the right one. For a
signed-in browser the token is an HMAC of the session's nonce (bound to the session); before
sign-in it is an HMAC of a random value in its own cookie (signed double-submit), so the sign-in
and first-run forms are protected too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import msgspec

from sluice.store.base import EventStore
from sluice.ui.accounts import session_key

SESSION_COOKIE = "sluice_session"
CSRF_COOKIE = "sluice_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
NONCE_BYTES = 16


class _Payload(msgspec.Struct, array_like=True):
    email: str
    expires: int
    nonce: str
    tag: str


@dataclass(frozen=True, slots=True)
class Session:
    email: str
    expires: int  # epoch seconds
    nonce: str  # what this session's CSRF tokens are derived from
    tag: str  # `accounts.password_tag` of the admin when the session began


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


class SessionKeys:
    """The signing key of one process, re-read from the store when the control plane changes.

    Reading the version costs one indexed lookup; re-reading the key only happens after a
    change, which also covers two workers racing to create the first key.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = -1
        self._key = b""

    def key(self) -> bytes:
        version = self._store.config_version()
        with self._lock:
            if version != self._version or not self._key:
                self._key = session_key(self._store)
                # Creating the key changed the version: remember the one after it.
                self._version = self._store.config_version()
            return self._key

    def _mac(self, purpose: str, data: str) -> str:
        digest = hmac.new(self.key(), f"{purpose}|{data}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    # --- sessions ------------------------------------------------------------------------------
    def sign(self, email: str, tag: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for `email` and its cookie value."""
        expires = int(now if now is not None else time.time()) + SESSION_TTL_S
        session = Session(email, expires, new_nonce(), tag)
        body = _b64(msgspec.json.encode(_Payload(email, expires, session.nonce, tag)))
        return f"{body}.{self._mac('session', body)}", session

    def verify(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, or None when it is missing, forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            payload = msgspec.json.decode(_unb64(body), type=_Payload)
        except (msgspec.DecodeError, binascii.Error, ValueError):
            return None
        if payload.expires <= (now if now is not None else time.time()):
            return None
        return Session(payload.email, payload.expires, payload.nonce, payload.tag)

    # --- CSRF ----------------------------------------------------------------------------------
    def csrf_token(self, nonce: str) -> str:
        return self._mac("csrf", nonce)

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(nonce))
