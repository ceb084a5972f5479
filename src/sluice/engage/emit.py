"""The events Engage sends, as Segment's Engage sends them, and their way into the log.

A computed trait's new value: an identify with `traits: {<key>: value}` (or, with `send_as:
track`, a track "Trait Computed" with `properties: {trait_key: <key>, <key>: value}`). An
audience flip: an identify with `traits: {<key>: true|false}` and a track "Audience Entered" /
"Audience Exited" with `properties: {audience_key: <key>, <key>: true|false}`, an exit again
under each other id of the profile (Segment sends exits with every id combination). All carry
`context.personas` ({computation_class, computation_key, computation_id, space_id}: what
actions-core's `engageAudienceMembership` reads) and the profile's userId / anonymousId (email
in `context.traits`), under the internal source `sluice-engage`.

Exactly once: the events are written to `engage_outbox` in the transaction that records the
change, appended to the log after it commits, then deleted. A crash between the append and the
delete appends them again with the same messageIds, which the log's dedupe drops.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from sluice.engage.tables import transaction
from sluice.identity.tables import IdentityDb
from sluice.spec.timestamps import format_ms
from sluice.store.base import AppendBatch, EventStore, NewEvent
from sluice.workspace.model_engage import ENGAGE_SOURCE_ID

ENTERED = "Audience Entered"
EXITED = "Audience Exited"
TRAIT_COMPUTED = "Trait Computed"
LIBRARY = {"name": "sluice-engage", "version": "1"}
FLUSH_ROWS = 1_000
ID_TYPES = ("user_id", "anonymous_id", "email")  # the ids Engage's events carry
_encode = msgspec.json.Encoder(order="sorted").encode


@dataclass(frozen=True, slots=True)
class Who:
    """The ids an emitted event carries for its profile, and the profile's other ids of those
    types (`others`: (type, value), oldest first), which only exits are also sent with."""

    user_id: str | None
    anonymous_id: str | None
    email: str | None
    others: tuple[tuple[str, str], ...] = ()

    def under(self, id_type: str, value: str) -> Who:
        """The same profile, told by another of its ids of `id_type` (one of `ID_TYPES`: they
        name the fields)."""
        return replace(self, **{id_type: value}, others=())


def who_of(db: IdentityDb, space: str, profiles: set[str]) -> dict[str, Who]:
    """user_id, the newest anonymous_id and email of each profile, and its other ids of those
    types (of the profile it was merged into since, when the identity graph is ahead: one hop,
    as the graph keeps `merged_into` pointing at live profiles). "Newest" by last seen, which
    for a type whose limit has no window (anonymous_id by default) is its first sighting: the
    graph keeps no later time for those (docs/identity.md), so the id added last wins."""
    clause, params = db.in_list(sorted(profiles))
    live = {p: p for p in profiles}
    for profile, merged_into in db.execute(
        f"SELECT profile_id, merged_into FROM profiles WHERE space = ? AND profile_id {clause}",
        [space, *params],
    ):
        if merged_into:
            live[profile] = merged_into
    clause, params = db.in_list(sorted(set(live.values())))
    ids: dict[str, dict[str, list[str]]] = {}
    for profile, id_type, value in db.execute(
        "SELECT profile_id, id_type, id_value FROM identities WHERE space = ?"
        f" AND profile_id {clause} AND id_type IN ('user_id', 'anonymous_id', 'email')"
        " ORDER BY last_seen_ms, id_value",
        [space, *params],
    ):
        ids.setdefault(profile, {}).setdefault(id_type, []).append(value)
    found = {profile: _who(by_type) for profile, by_type in ids.items()}
    return {p: found.get(live[p], Who(None, None, None)) for p in profiles}


def _who(by_type: dict[str, list[str]]) -> Who:
    """The newest id of each type carried, the rest kept for exits."""
    newest = {t: values[-1] for t, values in by_type.items()}
    others = tuple((t, v) for t in ID_TYPES for v in by_type.get(t, [])[:-1])
    return Who(newest.get("user_id"), newest.get("anonymous_id"), newest.get("email"), others)


def computation_id(space: str, cls: str, key: str) -> str:
    """A stable id for a computed trait or audience (Segment's are `aud_...`/`ct_...`)."""
    prefix = "aud_" if cls == "audience" else "ct_"
    return prefix + hashlib.sha256(f"{space}\0{cls}\0{key}".encode()).hexdigest()[:24]


def message_id(space: str, kind: str, key: str, profile: str, value: Any, stamp: str) -> str:
    """Deterministic: a redone step makes the same ids. `stamp` (position, clock, recomputation
    count) tells apart two changes to one value: at another position, at a later tick, or sent
    again after a recomputation."""
    digest = hashlib.sha256(
        f"{space}\0{kind}\0{key}\0{profile}\0{_encode(value).decode()}\0{stamp}".encode()
    ).hexdigest()
    return f"engage-{digest[:40]}"


def _base(space: str, who: Who, profile: str, cls: str, key: str, at_ms: int) -> dict[str, Any]:
    context: dict[str, Any] = {
        "library": dict(LIBRARY),
        "personas": {
            "computation_class": cls,
            "computation_key": key,
            "computation_id": computation_id(space, cls, key),
            "space_id": space,
        },
    }
    if who.email is not None:
        context["traits"] = {"email": who.email}
    body: dict[str, Any] = {"context": context, "timestamp": format_ms(at_ms)}
    if who.user_id is not None:
        body["userId"] = who.user_id
    if who.anonymous_id is not None or who.user_id is None:
        # A profile known by neither (an email only): its profile id stands in, as Segment's
        # events always carry one of the two.
        body["anonymousId"] = who.anonymous_id if who.anonymous_id is not None else profile
    return body


def trait_events(
    space: str,
    who: Who,
    profile: str,
    key: str,
    value: Any,
    stamp: str,
    at_ms: int,
    as_track: bool = False,
) -> list[dict[str, Any]]:
    body = _base(space, who, profile, "computed_trait", key, at_ms)
    if as_track:
        body.update(type="track", event=TRAIT_COMPUTED, properties={"trait_key": key, key: value})
    else:
        body.update(type="identify", traits={key: value})
    body["messageId"] = message_id(space, "trait", key, profile, value, stamp)
    return [body]


def audience_events(
    space: str, who: Who, profile: str, key: str, member: bool, stamp: str, at_ms: int
) -> list[dict[str, Any]]:
    """An identify and a track for the flip. An exit goes again under each of the profile's
    other ids (Segment "sends all ID combinations for Audience Exit events downstream to remove
    a user from the external audience"): a destination that knows the user by an older
    anonymous id or email, or by one of a profile merged into this one, is told too."""
    bodies = _audience_pair(space, who, profile, key, member, stamp, at_ms)
    if not member:
        for id_type, value in who.others:
            bodies += _audience_pair(
                space, who.under(id_type, value), profile, key, member,
                f"{stamp}\0{id_type}:{value}", at_ms,
            )  # fmt: skip
    return bodies


def _audience_pair(
    space: str, who: Who, profile: str, key: str, member: bool, stamp: str, at_ms: int
) -> list[dict[str, Any]]:
    identify = _base(space, who, profile, "audience", key, at_ms)
    identify.update(type="identify", traits={key: member})
    identify["messageId"] = message_id(space, "audience-identify", key, profile, member, stamp)
    track = _base(space, who, profile, "audience", key, at_ms)
    track.update(
        type="track",
        event=ENTERED if member else EXITED,
        properties={"audience_key": key, key: member},
    )
    track["messageId"] = message_id(space, "audience-track", key, profile, member, stamp)
    return [identify, track]


def to_outbox(db: IdentityDb, space: str, first_ord: int, bodies: list[dict[str, Any]]) -> None:
    db.executemany(
        "INSERT INTO engage_outbox (space, ord, message_id, payload) VALUES (?, ?, ?, ?)",
        [
            (space, first_ord + i, body["messageId"], _encode(body).decode())
            for i, body in enumerate(bodies)
        ],
    )


def flush(db: IdentityDb, store: EventStore, space: str) -> int:
    """Append the outbox's events to the log, then delete them; returns how many."""
    total = 0
    while True:
        rows = db.execute(
            "SELECT ord, message_id, payload FROM engage_outbox WHERE space = ?"
            " ORDER BY ord LIMIT ?",
            [space, FLUSH_ROWS],
        )
        if not rows:
            return total
        now = int(time.time() * 1000)
        events = []
        for _ord, mid, payload in rows:
            body: Mapping[str, Any] = msgspec.json.decode(payload)
            body = {**body, "receivedAt": format_ms(now)}
            events.append(
                NewEvent(
                    ENGAGE_SOURCE_ID,
                    mid,
                    body["type"],
                    body.get("event"),
                    now,
                    _encode(body),
                )
            )
        store.append(AppendBatch(events=events))
        with transaction(db, space):
            db.execute(
                "DELETE FROM engage_outbox WHERE space = ? AND ord <= ?", [space, rows[-1][0]]
            )
        total += len(rows)
