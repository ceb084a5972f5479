"""Rules and extraction: every blocked value never merges, Segment's id locations, and the
workspace's `identity:` section refused with the field named when it is wrong."""

from __future__ import annotations

import pytest
from identity_kit import consume, log_of, partition, payload

from sluice.identity.extract import external_ids
from sluice.identity.rules import JUNK_VALUES, SUGGESTED_VALUES, rules_from
from sluice.identity.tables import IdentityDb
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import parse_workspace
from sluice.workspace.model import BlockedValues, IdentitySettings, IdTypeRule

BLOCKED = sorted(
    {*SUGGESTED_VALUES, *JUNK_VALUES, "", " ", "000", "0-0", "---", "NULL", "None", "NaN",
     "[object Object]", '"undefined"', "'null'", " anonymous ", "Guest", "TRUE"}
)  # fmt: skip


@pytest.mark.parametrize("value", BLOCKED, ids=repr)
def test_a_blocked_value_never_merges(sqlite_db: IdentityDb, value: str) -> None:
    log = log_of([payload([("user_id", "a"), ("anonymous_id", value)]),
                  payload([("user_id", "b"), ("anonymous_id", value)]),
                  payload([("email", "c@x.io"), ("anonymous_id", value)])])  # fmt: skip
    consume(log, sqlite_db, rules_from(None))
    assert partition(sqlite_db) == {
        frozenset({("user_id", "a")}),
        frozenset({("user_id", "b")}),
        frozenset({("email", "c@x.io")}),
    }


def test_blocked_values_can_be_turned_off_and_added_to() -> None:
    blocked = BlockedValues(suggested=False, values=["abc123"], patterns=["^qa-"])
    rules = rules_from(IdentitySettings(blocked=blocked))
    assert not rules.is_blocked("anonymous")
    assert rules.is_blocked("abc123") and rules.is_blocked("qa-7") and rules.is_blocked(" ")


def test_segments_default_locations() -> None:
    event = {
        "type": "track",
        "userId": 42,
        "anonymousId": "anon",
        "context": {
            "traits": {"email": "c@x.io"},
            "device": {"type": "android", "id": "dev", "advertisingId": "ad", "token": "tok",
                       "adTrackingEnabled": True},
            "integrations": {"Google Analytics": {"clientId": "ga.1"}},
            "externalIds": [{"id": "+1 555", "type": "Phone", "collection": "users",
                             "encoding": "none"},
                            {"id": "acme", "type": "crm_account", "collection": "accounts"}],
        },
    }  # fmt: skip
    assert external_ids(event, rules_from(None)) == [
        ("users", "user_id", "42"),
        ("users", "email", "c@x.io"),
        ("users", "anonymous_id", "anon"),
        ("users", "android.id", "dev"),
        ("users", "android.idfa", "ad"),
        ("users", "android.push_token", "tok"),
        ("users", "ga_client_id", "ga.1"),
        ("users", "phone", "+1 555"),
        ("accounts", "crm_account", "acme"),
    ]
    event["context"]["device"] = {"type": "ios", "id": "i", "advertisingId": "ad"}  # type: ignore[index]
    found = external_ids(event, rules_from(None))
    assert ("users", "ios.id", "i") in found
    assert not any(t.endswith("idfa") for _, t, _ in found)  # no adTrackingEnabled: true


def test_group_ids_are_accounts_and_custom_traits_are_promoted() -> None:
    rules = rules_from(IdentitySettings(id_types=[IdTypeRule(type="phone", trait="phone")]))
    group = {"type": "group", "groupId": "g1", "userId": "u", "traits": {"email": "acct@x.io"}}
    assert external_ids(group, rules) == [("users", "user_id", "u"), ("accounts", "group_id", "g1")]
    identify = {"type": "identify", "userId": "u", "traits": {"phone": "555"}}
    assert ("users", "phone", "555") in external_ids(identify, rules)


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ("id_types: [{type: email, limit: 0}]", "identity.id_types[0].limit", ">= 1"),
        ("id_types: [{type: email, window_days: 5 weekly}]", "identity.id_types[0].window_days",
         "Expected `int`"),
        ("id_types: [{type: email, limt: 5}]", "identity.id_types[0].limt", "Unknown field"),
        ("id_types: [{type: Email}]", "identity.id_types[0].type", "identifier type"),
        ("id_types: [{type: email}, {type: email}]", "identity.id_types[1].type", "two rules"),
        ("blocked: {patterns: ['(']}", "identity.blocked.patterns[0]", "regular expression"),
        ("max_merge_identities: 1", "identity.max_merge_identities", ">= 2"),
    ],
    ids=["limit", "window", "unknown-field", "type-name", "duplicate", "regex", "guard"],
)  # fmt: skip
def test_an_invalid_rule_is_refused_naming_the_field(section: str, path: str, message: str) -> None:
    with pytest.raises(WorkspaceError) as caught:
        parse_workspace(f"identity: {{{section}}}\n", "ws.yaml")
    assert caught.value.path == path
    assert message.replace("`", "") in caught.value.message


def test_a_valid_section_round_trips_and_changes_the_fingerprint() -> None:
    ws = parse_workspace(
        "identity:\n  id_types:\n    - {type: email, limit: 3, window_days: 7, priority: 2}\n",
        None,
    )
    assert ws.identity is not None
    rules = rules_from(ws.identity)
    assert rules.rule("email").limit == 3 and rules.rule("email").window_ms == 7 * 86_400_000
    assert rules.fingerprint != rules_from(None).fingerprint
    assert rules_from(IdentitySettings(enabled=False)).fingerprint == rules_from(None).fingerprint
