"""Segment's default PII matchers and custom ones, each with cases that must match and cases
that must not; and the block/hash rules applied to events (pure, no server)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sluice.pii.classify import Classifier, CustomMatcher, dice, normalize_key
from sluice.pii.control import PiiControl
from sluice.pii.defaults import KEY_MATCHERS, default_value_match, luhn

DEFAULTS = Classifier([])


def key(name: str) -> str | None:
    verdict = DEFAULTS.key(name)
    return None if verdict is None else verdict[1]


def test_keys_are_split_into_words() -> None:
    assert normalize_key("billingAddress") == "billing address"
    assert normalize_key("Billing-Address_2") == "billing address 2"
    assert normalize_key("userIPAddress") == "user ip address"


# Every default key matcher: a key it must classify, and one close to it that it must not.
KEY_CASES = {
    "social security number": ("ssn", "session"),
    "password": ("user_password", "passage"),
    "visa": ("visaNumber", "visage"),
    "veteran": ("veteran_status", "veterinary"),
    "disability": ("disability", "disable_ads"),
    "credit card": ("credit_card", "card_color"),
    "passport": ("passportNo", "pass"),
    "token": ("access_token", "tokenize_count"),
    "race": ("race", "racetrack"),
    "birthdate": ("date_of_birth", "birth_place"),
    "phone": ("phone_number", "iphone_model"),
    "address": ("billingAddress", "addressed"),
    "gender": ("gender", "genderless_size"),
    "ethnicity": ("ethnicity", "ethnic_food"),
    "citizenship": ("citizenship", "citizen_count"),
    "street": ("street", "streetwise"),
    "city": ("city", "velocity"),
    "zipcode": ("zip_code", "zipper"),
    "email": ("userEmail", "emailed_count"),
    "certificate": ("certificate_id", "certified"),
    "license": ("drivers_license", "licensed"),
    "identification": ("identification", "identify_count"),
    "serial": ("serial_number", "serialized"),
    "ip": ("ip", "tip_jar"),
    "photo": ("photo_url", "photography_genre"),
    "salary": ("salary", "sales"),
    "religion": ("religion", "region"),
    "mac": ("mac_address", "macro"),
    "sex": ("sex", "sextant"),
    "sexual orientation": ("sexual_orientation", "orientation"),
    "medication": ("medication", "media"),
    "allergy": ("allergies", "allegro"),
    "condition": ("condition", "conditional"),
    "diagnosis": ("diagnosis", "diagnostic_mode"),
    "procedure": ("procedure", "procedural"),
}


def test_every_default_key_matcher_has_cases() -> None:
    assert set(KEY_CASES) == set(KEY_MATCHERS)


@pytest.mark.parametrize("matcher", sorted(KEY_CASES))
def test_default_key_matcher(matcher: str) -> None:
    positive, negative = KEY_CASES[matcher]
    verdict = DEFAULTS.key(positive)
    assert verdict is not None and verdict[0] == matcher, (positive, verdict)
    assert verdict[1] == KEY_MATCHERS[matcher][0]
    assert DEFAULTS.key(negative) is None, negative


def test_name_only_for_person_name_keys() -> None:
    assert key("first_name") == "yellow" and key("lastName") == "yellow" and key("name") == "yellow"
    assert key("product_name") is None and key("rename") is None


def test_the_strictest_matcher_wins_within_a_key() -> None:
    assert key("email_password") == "red"


# value -> (matcher, classification) or None
VALUE_CASES: list[tuple[str, tuple[str, str] | None]] = [
    ("jane.doe+tag@example.co.uk", ("email", "yellow")),
    ("not an email @ all", None),
    ("jane@localhost", None),
    ("4111 1111 1111 1111", ("credit card", "red")),
    ("4111-1111-1111-1111", ("credit card", "red")),
    ("378282246310005", ("credit card", "red")),  # Amex, 15 digits
    ("4111111111111112", None),  # fails Luhn
    ("1700000000000", None),  # a millisecond timestamp, not a card
    ("123-45-6789", ("social security number", "red")),
    ("000-45-6789", None),  # no SSN has area 000
    ("123-45-67890", None),
    ("(555) 123-4567", ("phone", "yellow")),
    ("555-123-4567", ("phone", "yellow")),
    ("+44 20 7946 0958", ("phone", "yellow")),
    ("+1", None),
    ("5551234567", None),  # a bare run of digits is an id more often than a phone
    ("2026-12-07", None),  # a date
    ("192.168.0.1", ("ip", "yellow")),
    ("256.1.1.1", None),
    ("2001:db8::8a2e:370:7334", ("ip", "yellow")),
    ("fe80::1", ("ip", "yellow")),
    ("12:30:45", None),  # a time, not IPv6
    ("1.2.3", None),
    ("x" * 300 + "@example.com", None),  # longer than any address: text, not one field
]


@pytest.mark.parametrize(("value", "expected"), VALUE_CASES)
def test_default_value_matchers(value: str, expected: tuple[str, str] | None) -> None:
    assert default_value_match(value) == expected


def test_luhn() -> None:
    assert luhn("79927398713") and not luhn("79927398710")


def test_dice_coefficient_as_segment_scores_similarity() -> None:
    assert dice("email", "email") == 1.0
    assert dice("night", "nacht") == pytest.approx(0.25)
    assert dice("loyaltynumber", "loyalty_numbr".replace("_", "")) > 0.7


def matcher(**fields: Any) -> CustomMatcher:
    fields.setdefault("name", "m")
    fields.setdefault("classification", "red")
    fields.setdefault("target", "key")
    fields.setdefault("match", "exact")
    return CustomMatcher.build(**fields)


def test_custom_key_exact_matches_the_words_not_lookalikes() -> None:
    c = Classifier([matcher(terms=["Social Insurance Number", "SIN"])], defaults=False)
    assert c.key("social_insurance_number") == ("m", "red")
    assert c.key("sin") == ("m", "red")
    assert c.key("socialInsuranceNumber") == ("m", "red")
    assert c.key("social_insurance_numbr") is None
    assert c.key("single") is None


def test_custom_key_similar_uses_dice_above_07() -> None:
    c = Classifier([matcher(match="similar", terms=["loyalty number"],
                            classification="yellow")], defaults=False)  # fmt: skip
    assert c.key("loyalty_numbr") == ("m", "yellow")
    assert c.key("LoyaltyNumbers") == ("m", "yellow")
    assert c.key("royalty") is None


def test_custom_value_exact_similar_and_regex() -> None:
    exact = Classifier([matcher(target="value", terms=["Top Secret"])], defaults=False)
    assert exact.value("top secret") == ("m", "red") and exact.value("top secrets") is None
    similar = Classifier([matcher(target="value", match="similar", terms=["project falcon"])],
                         defaults=False)  # fmt: skip
    assert similar.value("Project Falcons") == ("m", "red")
    assert similar.value("project eagle") is None
    regex = Classifier([matcher(target="value", match="regex", terms=[r"^EMP-\d{6}$"])],
                       defaults=False)  # fmt: skip
    assert regex.value("EMP-123456") == ("m", "red") and regex.value("EMP-12345") is None


def test_custom_regex_on_keys() -> None:
    c = Classifier([matcher(match="regex", terms=[r"^x_secret_"])], defaults=False)
    assert c.key("x_secret_color") == ("m", "red") and c.key("y_secret_color") is None


def test_a_custom_green_matcher_clears_a_default() -> None:
    c = Classifier([matcher(classification="green", terms=["city"])])
    assert c.key("city") == ("m", "green")
    assert Classifier([]).key("city") == ("city", "yellow")


def test_defaults_can_be_turned_off() -> None:
    c = Classifier([], defaults=False)
    assert c.key("email") is None and c.value("a@b.co") is None


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event() -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Paid",
        "userId": "jane@example.com",  # top level: not scanned, as at Segment
        "context": {"ip": "10.0.0.1", "library": {"name": "analytics.js"}},
        "properties": {
            "card": "4111 1111 1111 1111",
            "plan": "pro",
            "contact": {"email": "jane@example.com", "city": "Paris"},
            "password": None,
            "notes": ["hello", "123-45-6789"],
        },
    }


def test_hash_red_block_yellow() -> None:
    e = event()
    blocked, hashed = PiiControl(Classifier([]), red="hash", yellow="block").apply(e)
    assert e["properties"] == {
        "card": sha("4111 1111 1111 1111"),
        "plan": "pro",
        "contact": {},
        "password": None,  # a Red key, but null reveals nothing
        "notes": ["hello", sha("123-45-6789")],
    }
    assert e["context"] == {"library": {"name": "analytics.js"}}
    assert e["userId"] == "jane@example.com"
    assert (blocked, hashed) == (3, 3)


def test_a_classified_object_is_hashed_leaf_by_leaf_and_blocked_whole() -> None:
    e = {"type": "identify", "traits": {"address": {"street": "1 Main St", "zip": 75001}}}
    PiiControl(Classifier([]), red=None, yellow="hash").apply(e)
    assert e["traits"] == {"address": {"street": sha("1 Main St"), "zip": sha("75001")}}
    e = {"type": "identify", "traits": {"address": {"street": "1 Main St"}, "plan": "pro"}}
    PiiControl(Classifier([]), red=None, yellow="block").apply(e)
    assert e["traits"] == {"plan": "pro"}


def test_only_the_classes_with_a_rule_change() -> None:
    e = event()
    PiiControl(Classifier([]), red="block", yellow=None).apply(e)
    assert "card" not in e["properties"] and "password" not in e["properties"]
    assert e["properties"]["contact"] == {"email": "jane@example.com", "city": "Paris"}
    assert e["context"]["ip"] == "10.0.0.1"
    assert e["properties"]["notes"] == ["hello"]
