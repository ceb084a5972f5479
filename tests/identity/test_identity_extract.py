"""The consumer's struct reading of a payload gives what reading it whole gives, whatever the
shapes of the fields identity reads (objects, scalars, arrays, absent)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.identity.extract import external_ids, identifying
from sluice.identity.rules import rules_from
from sluice.workspace.model import IdentitySettings

RULES = rules_from(None)
CUSTOM = rules_from(
    msgspec.convert({"id_types": [{"type": "phone", "trait": "phone"}]}, IdentitySettings)
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["a1", "u1", "p@x.io", "", " ", "null", "0-0", "Android", "ios", "+1555"]),
)
anything = st.recursive(scalar, lambda inner: st.lists(inner, max_size=2), max_leaves=3)


def maybe_obj(fields: dict[str, Any]) -> st.SearchStrategy[Any]:
    """An object with all these fields, with some of them, or another value in its place."""
    return st.one_of(
        st.fixed_dictionaries(fields), st.fixed_dictionaries({}, optional=fields), anything
    )


traits = maybe_obj({"email": scalar, "phone": scalar, "plan": anything})
device = maybe_obj(
    {"type": scalar, "id": scalar, "advertisingId": scalar, "adTrackingEnabled": scalar,
     "token": scalar}
)  # fmt: skip
items = st.one_of(
    st.lists(maybe_obj({"type": scalar, "id": scalar, "collection": scalar}), max_size=3),
    anything,
)
context = maybe_obj(
    {"traits": traits, "device": device, "externalIds": items,
     "integrations": maybe_obj({"Google Analytics": maybe_obj({"clientId": scalar})}),
     "page": anything}
)  # fmt: skip
events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["identify", "group", "track", "page", 3, None]),
        "userId": scalar,
        "anonymousId": scalar,
        "groupId": scalar,
        "timestamp": st.sampled_from(["2026-12-01T00:00:00Z", "x", 5, None]),
        "traits": traits,
        "properties": anything,
        "context": context,
    },
)


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@settings(max_examples=1000, deadline=None)
@given(events)
def test_struct_reading_equals_whole_reading(event: dict[str, Any]) -> None:
    payload = msgspec.json.encode(event)
    for rules in (RULES, CUSTOM):
        found = identifying(payload, rules)
        assert found is not None
        assert found.ids == external_ids(event, rules)
        context_traits = _obj(_obj(event.get("context")).get("traits"))
        kind = event.get("type")
        own = _obj(event.get("traits"))
        user = {**context_traits, **own} if kind == "identify" else context_traits
        assert found.user_traits == user
        assert found.account_traits == (own if kind == "group" else {})
        assert found.timestamp == event.get("timestamp")


def test_not_an_object_has_no_identity() -> None:
    assert identifying(b"[1, 2]", RULES) is None
    assert identifying(b'{"userId": "u1"', RULES) is None
    assert identifying(b'"u1"', RULES) is None
