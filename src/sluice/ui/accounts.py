"""Admin accounts of the web UI and the key that signs their sessions, kept in the store.

Both are control-plane objects of kinds `sluice apply` does not manage (`ui_admin`,
`ui_secret`), so applying a workspace file never removes them and `sluice export` never prints
them. Passwords are hashed with scrypt (memory-hard, in the standard library); the stored form
names its parameters, so they can be raised later without breaking existing hashes.

Tree:
    SluiceError
    └── AccountError   an admin cannot be created, changed or found (the message says why)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import msgspec

from sluice.errors import SluiceError
from sluice.store.base import ConfigObject, EventStore
from sluice.workspace.sync import MANAGED_KINDS

ADMIN_KIND = "ui_admin"
SECRET_KIND = "ui_secret"
SECRET_ID = "session"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# scrypt at n=2**14, r=8 takes about 16 MiB and 30-60 ms here: slow enough to make guessing
# expensive, fast enough for a sign-in.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
HASH_BYTES = 32
SECRET_BYTES = 32

assert ADMIN_KIND not in MANAGED_KINDS and SECRET_KIND not in MANAGED_KINDS


class AccountError(SluiceError):
    """An admin account cannot be created, changed or found."""


class Admin(msgspec.Struct, kw_only=True):
    """One admin as stored: the email is the id; `password` is an scrypt hash string."""

    email: str
    password: str
    created_at_ms: int


class _Secret(msgspec.Struct):
    key: str  # URL-safe base64


_admin_decoder = msgspec.json.Decoder(Admin)
_secret_decoder = msgspec.json.Decoder(_Secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (salt and hash in URL-safe base64)."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int = HASH_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=size
    )


# A hash to check against when the email is unknown, so that a wrong email takes as long to
# refuse as a wrong password (no way to find out which emails are admins by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_new_credentials(email: str, password: str) -> str:
    """The normalised email; raises AccountError when the email or password is unusable."""
    email = normalise_email(email)
    local, at, domain = email.partition("@")
    if not (local and at and domain) or any(c.isspace() for c in email) or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return email


def list_admins(store: EventStore) -> list[Admin]:
    return [_admin_decoder.decode(obj.body) for obj in store.list_config(ADMIN_KIND)]


def has_admin(store: EventStore) -> bool:
    return bool(store.list_config(ADMIN_KIND))


def find_admin(store: EventStore, email: str) -> Admin | None:
    email = normalise_email(email)
    for admin in list_admins(store):
        if admin.email == email:
            return admin
    return None


def create_admin(store: EventStore, email: str, password: str, *, replace: bool = False) -> Admin:
    """Create an admin, or with `replace` set a new password for an existing one."""
    email = check_new_credentials(email, password)
    existing = find_admin(store, email)
    if existing is not None and not replace:
        raise AccountError(f"an admin {email!r} exists already (use --update to change it)")
    if existing is None and replace:
        raise AccountError(f"no admin {email!r}")
    created = existing.created_at_ms if existing else int(time.time() * 1000)
    admin = Admin(email=email, password=hash_password(password), created_at_ms=created)
    store.put_config(ConfigObject(ADMIN_KIND, email, msgspec.json.encode(admin)))
    return admin


def delete_admin(store: EventStore, email: str) -> None:
    """Remove an admin: every other control-plane object is written back unchanged."""
    email = normalise_email(email)
    objects = store.list_config()
    kept = [o for o in objects if not (o.kind == ADMIN_KIND and o.id == email)]
    if len(kept) == len(objects):
        raise AccountError(f"no admin {email!r}")
    store.replace_config(kept)


def authenticate(store: EventStore, email: str, password: str) -> Admin | None:
    """The admin these credentials belong to, or None (taking as long either way)."""
    admin = find_admin(store, email)
    if admin is None:
        verify_password(password, _DUMMY_HASH)
        return None
    return admin if verify_password(password, admin.password) else None


def password_tag(admin: Admin) -> str:
    """A short digest of the admin's password hash, carried in sessions: a new password
    invalidates every session signed in with the old one."""
    return _b64(hashlib.sha256(admin.password.encode()).digest()[:9])


def session_key(store: EventStore) -> bytes:
    """The key sessions are signed with, created on first use.

    Several HTTP workers may create one at the same moment; the store keeps the last write and
    every worker reads the key back (`SessionKeys` re-reads it when the control plane changes),
    so they all end up signing with the same key.
    """
    for obj in store.list_config(SECRET_KIND):
        if obj.id == SECRET_ID:
            return _unb64(_secret_decoder.decode(obj.body).key)
    key = secrets.token_bytes(SECRET_BYTES)
    body = msgspec.json.encode(_Secret(_b64(key)))
    store.put_config(ConfigObject(SECRET_KIND, SECRET_ID, body))
    return session_key(store)
