"""Requests and responses as kept for parked events, the retry set and `sluice trace`: JSON,
bodies as text, credentials redacted.

These records are stored as they are and shown by `sluice trace`, `sluice parked list`, the UI
and the admin API, so what a destination authenticates with must not reach them. Three rules,
each replacing a value by `<redacted>`:

1. Names. A header (request or response) or URL query parameter whose name looks secret
   (`secret_name`: e.g. `Authorization`, `X-Api-Key`, `Cookie`, `X-Signature`, `api_secret`,
   `key`, `access_token`, `sig`) has its value redacted. Signatures count: an HMAC kept next
   to the body it signs lets a weak shared secret be guessed offline.
2. URL user info. `https://user:password@host/` keeps the user name (it helps to tell
   accounts apart) and loses the password; user info without a password is itself the
   credential (`https://TOKEN@host/`) and goes whole. Applied to the request URL and to URLs
   in a connection error's text.
3. Values. Every value of a setting the destination marks secret
   (`Destination.secret_settings`, e.g. GA4's `api_secret`) is redacted wherever it appears:
   URL, header values, request and response bodies, error text; as is, JSON-escaped and
   URL-encoded. Values shorter than `MIN_SECRET_CHARS` are left alone: replacing every "ab"
   in a body would make the record useless, and no real credential is that short.
4. Paths that are credentials. An incoming-webhook URL of a host in `SECRET_PATH_HOSTS`
   (Slack's `https://hooks.slack.com/services/T…/B…/X…`, Discord's) is its own credential:
   everything after the path's first segment goes, in the request URL and in error texts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import msgspec

from sluice.destinations.base import OutRequest, Response

MAX_KEPT_BODY = 16 * 1024
# A failed request of many events is kept with each of them (retry set, parked): less of it.
SHARED_KEPT_BODY = 1024
REDACTED = "<redacted>"
# Rule 4: hosts whose webhook URLs carry the credential in the path.
SECRET_PATH_HOSTS = frozenset({"hooks.slack.com", "discord.com", "discordapp.com"})
MIN_SECRET_CHARS = 4

# Rule 1. Names are compared lower-cased with `-` read as `_`. A name is secret when it is one
# of SECRET_NAMES, ends with one of SECRET_SUFFIXES, or contains one of SECRET_PARTS.
SECRET_NAMES = frozenset(
    {
        "authorization", "proxy_authorization", "cookie", "set_cookie",
        "key", "sig", "pwd", "pass", "auth", "credential", "credentials",
    }
)  # fmt: skip
SECRET_SUFFIXES = ("_key", "_sig", "_auth", "_pwd")  # x_api_key, write_key, license_key, ...
SECRET_PARTS = ("secret", "passw", "token", "apikey", "api_key", "signature", "credential")

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def secret_name(name: str) -> bool:
    """Whether a header or query parameter named so carries a credential (rule 1)."""
    normal = name.strip().lower().replace("-", "_")
    return (
        normal in SECRET_NAMES
        or normal.endswith(SECRET_SUFFIXES)
        or any(part in normal for part in SECRET_PARTS)
    )


class Redactor:
    """The three rules for one destination's secret setting values."""

    __slots__ = ("_bytes", "_texts")

    def __init__(self, secrets: Collection[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                continue
            escaped = msgspec.json.encode(secret).decode()[1:-1]
            for form in (secret, escaped):
                forms.update((form, quote(form, safe=""), quote_plus(form)))
            # Put raw into a query (as Segment's GA4 code does), a secret reaches the API, and
            # an echo of it comes back, form-decoded: `+` as a space, `%xx` decoded.
            decoded = unquote_plus(secret)
            if decoded != secret and len(decoded) >= MIN_SECRET_CHARS:
                forms.add(decoded)
        # Longest first: a secret containing another is replaced whole.
        self._texts = sorted(forms, key=len, reverse=True)
        self._bytes = [form.encode() for form in self._texts]

    def text(self, text: str) -> str:
        """Rule 3 on a string."""
        for form in self._texts:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def body(self, body: bytes, limit: int) -> str:
        """Rule 3 on a body, then its first `limit` bytes as text (`…` when cut)."""
        for form in self._bytes:
            if form in body:
                body = body.replace(form, REDACTED.encode())
        text = body[:limit].decode("utf-8", "replace")
        return text + ("…" if len(body) > limit else "")

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Rules 1 and 3 on headers."""
        return {k: REDACTED if secret_name(k) else self.text(v) for k, v in headers.items()}

    def url(self, url: str) -> str:
        """Rules 2, 1 (query) and 3 on a URL, leaving the rest of it byte for byte."""
        rest, hash_, fragment = url.partition("#")
        rest, question, query = rest.partition("?")
        scheme, sep, after = rest.partition("://")
        if sep:
            authority, slash, path = after.partition("/")
            userinfo, at, host = authority.rpartition("@")
            if path and host.rsplit(":", 1)[0].lower() in SECRET_PATH_HOSTS:
                first, inner, more = path.partition("/")
                if first == "api":  # discord.com/api/webhooks/<id>/<token>
                    first, inner, more = path.partition("/webhooks/")
                path = f"{first}{inner}{REDACTED}" if more else path
            if at:
                user, colon, _password = userinfo.partition(":")
                userinfo = f"{user}:{REDACTED}" if colon else REDACTED
                authority = f"{userinfo}@{host}"
            rest = f"{scheme}://{authority}{slash}{path}"
        if question:
            query = "&".join(_query_part(part) for part in query.split("&"))
        return self.text(f"{rest}{question}{query}{hash_}{fragment}")

    def error(self, text: str) -> str:
        """Rules 2, 1 and 3 on an error's text (which may quote the URL)."""
        return self.text(_URL_IN_TEXT.sub(lambda m: self.url(m.group(0)), text))


def _query_part(part: str) -> str:
    name, eq, _value = part.partition("=")
    return f"{name}={REDACTED}" if eq and secret_name(unquote_plus(name)) else part


def request_record(
    request: OutRequest, limit: int = MAX_KEPT_BODY, secrets: Collection[str] = ()
) -> bytes:
    """The request as kept; `secrets` are the destination's `secret_values` (rule 3)."""
    redact = Redactor(secrets)
    record: dict[str, Any] = {
        "method": request.method,
        "url": redact.url(request.url),
        "headers": redact.headers(request.headers),
        "body": redact.body(request.body, limit),
    }
    return msgspec.json.encode(record)


def response_record(
    response: Response, limit: int = MAX_KEPT_BODY, secrets: Collection[str] = ()
) -> bytes:
    """The response as kept; `secrets` are the destination's `secret_values` (rule 3)."""
    redact = Redactor(secrets)
    headers = redact.headers(response.headers)
    record: dict[str, Any] = {"status": response.status, "headers": headers}
    if response.error:
        record["error"] = redact.error(response.error)
    record["body"] = redact.body(response.body, limit)
    return msgspec.json.encode(record)
