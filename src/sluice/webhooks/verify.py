"""Is this webhook delivery really from the provider? Each provider's signature scheme, checked
on the raw body bytes before anything is decoded or stored.

Schemes, as the providers document them (and as their own libraries sign, which the tests use
as oracles):

- **stripe**: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256(secret, "<t>.<body>"),
  any `v1` may match (several during a secret's rotation), `t` within the tolerance;
- **github**: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
- **shopify**: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>`;
- **twilio**: `X-Twilio-Signature: <base64 HMAC-SHA1(auth token, URL + each form parameter's
  name and value, sorted by name)>`; a JSON body is signed through the URL's `bodySHA256`
  parameter (hex SHA-256 of the body), the URL alone being signed;
- **standard-webhooks** (Svix and the senders following standardwebhooks.com): `webhook-id`,
  `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>`
  (several, space-separated), the key being the base64 after `whsec_`, the timestamp within the
  tolerance both ways;
- **generic**: an HMAC of the body (algorithm sha1/sha256/sha512, hex or base64, an optional
  prefix such as `sha256=`) in a header the source names, or a bearer token.

Every source may have several secrets (rotation): any one verifies. Comparisons are constant
time. A failure raises `Rejected` with the reason that is counted (never the secret or the
signature) and the HTTP status the provider's retry logic expects for a refusal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from sluice.errors import SluiceError

Provider = Literal["stripe", "github", "shopify", "twilio", "standard-webhooks", "generic"]
PROVIDERS: tuple[Provider, ...] = (
    "stripe", "github", "shopify", "twilio", "standard-webhooks", "generic",
)  # fmt: skip
DEFAULT_TOLERANCE_S = 300
HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
UNAUTHORIZED = 401


class Rejected(SluiceError):
    """A delivery that is not verified: `reason` is what is counted, `status` the answer."""

    def __init__(self, reason: str, message: str, status: int = UNAUTHORIZED) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    """What verification reads of one request: the body as received, the headers (names
    lower-cased), and the URL the provider called (Twilio signs it)."""

    body: bytes
    headers: Mapping[str, str]
    url: str = ""
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Generic:
    """How a `generic` source is signed: an HMAC header, or a bearer token."""

    scheme: Literal["hmac", "bearer"] = "hmac"
    header: str = "x-signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""  # e.g. "sha256=" before the digest


def verify(
    provider: Provider,
    delivery: Delivery,
    secrets: Sequence[str],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    generic: Generic | None = None,
    now: float | None = None,
) -> None:
    """Raise `Rejected` unless `delivery` is signed with one of `secrets` by `provider`'s
    scheme (and, where the scheme has a timestamp, within `tolerance_s` of `now`)."""
    if not secrets:
        raise Rejected("no_secret", "the source has no signing secret configured", 500)
    at = time.time() if now is None else now
    if provider == "stripe":
        _stripe(delivery, secrets, tolerance_s, at)
    elif provider == "github":
        _github(delivery, secrets)
    elif provider == "shopify":
        _hmac_header(delivery, secrets, "x-shopify-hmac-sha256", "sha256", "base64", "")
    elif provider == "twilio":
        _twilio(delivery, secrets)
    elif provider == "standard-webhooks":
        _standard(delivery, secrets, tolerance_s, at)
    elif provider == "generic":
        _generic(delivery, secrets, generic or Generic())
    else:
        raise Rejected("unknown_provider", f"unknown provider {provider!r}", 500)


def _header(delivery: Delivery, name: str) -> str:
    value = delivery.headers.get(name)
    if not value:
        raise Rejected("missing_signature", f"no {name} header")
    return value


def _mac(secret: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, message, HASHES[algorithm]).digest()


def _any_equal(expected: Sequence[bytes], given: Sequence[bytes]) -> bool:
    """Whether any given signature equals any expected one (constant time per pair)."""
    found = False
    for candidate in given:
        for wanted in expected:
            found |= hmac.compare_digest(candidate, wanted)
    return found


def _fresh(timestamp: str, tolerance_s: float, now: float, *, future: bool) -> None:
    try:
        at = int(timestamp)
    except ValueError:
        raise Rejected("bad_timestamp", "the signature's timestamp is not a number") from None
    if now - at > tolerance_s or (future and at - now > tolerance_s):
        raise Rejected(
            "stale_timestamp", f"the signature's timestamp is over {tolerance_s:g} s old"
        )


def _stripe(delivery: Delivery, secrets: Sequence[str], tolerance_s: float, now: float) -> None:
    header = _header(delivery, "stripe-signature")
    timestamp, given = "", []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            try:
                given.append(bytes.fromhex(value))
            except ValueError:
                continue
    if not timestamp or not given:
        raise Rejected("bad_signature", "Stripe-Signature has no t= or v1= part")
    signed = timestamp.encode() + b"." + delivery.body
    expected = [_mac(s.encode(), signed) for s in secrets]
    if not _any_equal(expected, given):
        raise Rejected("bad_signature", "no v1 signature matches a signing secret")
    _fresh(timestamp, tolerance_s, now, future=False)


def _github(delivery: Delivery, secrets: Sequence[str]) -> None:
    header = _header(delivery, "x-hub-signature-256")
    if not header.startswith("sha256="):
        raise Rejected("bad_signature", "X-Hub-Signature-256 does not start with sha256=")
    try:
        given = bytes.fromhex(header[len("sha256=") :])
    except ValueError:
        raise Rejected("bad_signature", "X-Hub-Signature-256 is not hex") from None
    if not _any_equal([_mac(s.encode(), delivery.body) for s in secrets], [given]):
        raise Rejected("bad_signature", "X-Hub-Signature-256 matches no secret")


def _decode(value: str, encoding: str) -> bytes:
    try:
        return bytes.fromhex(value) if encoding == "hex" else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise Rejected("bad_signature", f"the signature is not {encoding}") from None


def _hmac_header(
    delivery: Delivery,
    secrets: Sequence[str],
    header: str,
    algorithm: str,
    encoding: str,
    prefix: str,
) -> None:
    value = _header(delivery, header)
    if prefix and not value.startswith(prefix):
        raise Rejected("bad_signature", f"{header} does not start with {prefix}")
    given = _decode(value[len(prefix) :].strip(), encoding)
    expected = [_mac(s.encode(), delivery.body, algorithm) for s in secrets]
    if not _any_equal(expected, [given]):
        raise Rejected("bad_signature", f"{header} matches no secret")


def _twilio(delivery: Delivery, secrets: Sequence[str]) -> None:
    given = _decode(_header(delivery, "x-twilio-signature"), "base64")
    url = delivery.url
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if "bodySHA256" in query:  # a JSON (non-form) body: the URL is signed, the body hashed in it
        digest = hashlib.sha256(delivery.body).hexdigest()
        if not hmac.compare_digest(digest, query["bodySHA256"]):
            raise Rejected("bad_signature", "the body does not match bodySHA256")
        signed = url.encode()
    else:
        try:
            params = parse_qsl(delivery.body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise Rejected("bad_body", "a form body that is not UTF-8", 400) from None
        params.sort(key=lambda item: item[0])
        signed = (url + "".join(k + v for k, v in params)).encode()
    expected = [_mac(s.encode(), signed, "sha1") for s in secrets]
    if not _any_equal(expected, [given]):
        raise Rejected("bad_signature", "X-Twilio-Signature matches no auth token")


def _standard_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise Rejected("bad_secret", "a standard-webhooks secret is whsec_<base64>", 500) from None


def _standard(delivery: Delivery, secrets: Sequence[str], tolerance_s: float, now: float) -> None:
    message_id = _header(delivery, "webhook-id")
    timestamp = _header(delivery, "webhook-timestamp")
    given = []
    for part in _header(delivery, "webhook-signature").split():
        version, _, value = part.partition(",")
        if version == "v1":
            try:
                given.append(base64.b64decode(value, validate=True))
            except (ValueError, binascii.Error):
                continue
    signed = f"{message_id}.{timestamp}.".encode() + delivery.body
    expected = [_mac(_standard_key(s), signed) for s in secrets]
    if not given or not _any_equal(expected, given):
        raise Rejected("bad_signature", "no v1 webhook-signature matches a secret")
    _fresh(timestamp, tolerance_s, now, future=True)


def _generic(delivery: Delivery, secrets: Sequence[str], scheme: Generic) -> None:
    if scheme.scheme == "bearer":
        header = _header(delivery, "authorization")
        token = header[len("Bearer ") :] if header[:7].lower() == "bearer " else ""
        if not token or not _any_equal([s.encode() for s in secrets], [token.encode()]):
            raise Rejected("bad_token", "the bearer token matches no secret")
        return
    _hmac_header(
        delivery, secrets, scheme.header.lower(), scheme.algorithm, scheme.encoding,
        scheme.prefix,
    )  # fmt: skip
