"""The fast check (protocols/fastpath.py) must never call an invalid event valid: whenever it
says valid, fastjsonschema (the verdict) agrees. Checked over thousands of generated schemas and
messages, raw and decoded, and on the common plan shapes it must actually cover (else the
collector would pay for fastjsonschema on every event)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from sluice.protocols.enforce import _unplanned, _valid
from sluice.protocols.schema import Rule

STRINGS = ["USD", "usd", "US", "a", "ba", "a\n", "", "😀😀", "a@b.co", "not an email",
           "2026-01-01T00:00:00Z", "prop_0", "x" * 12]  # fmt: skip
NUMBERS = [0, 1, -5, 3, 10**20, 1.0, 2.5, -0.0, 99.5, 1e300]
PATTERNS = ["^[A-Z]{3}$", "a", "^a$", "\\d+", "^a\\$"]
NAMES = ["order_id", "revenue", "currency", "coupon", "products", "extra"]


def random_schema(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(16)
    if pick == 0:
        return {}
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return {"enum": rng.choice([["a", "b"], [1, 2], ["a", None], [1, True], [1.0, 2], []][:5])}
    if pick == 3:
        return {"type": rng.choice(["string", "integer"]), "enum": rng.choice(
            [["USD", "EUR"], [1, 3], ["a", None], [0, "a"]])}  # fmt: skip
    if pick == 4:
        return {"minLength": 2}  # a constraint without a type
    if pick == 5:
        return {"type": "string", "format": rng.choice(["email", "date-time"])}
    if pick == 6:
        return {"type": "number", "multipleOf": 0.5}
    if pick == 7 and depth < 3:
        return {"type": "array", "items": random_schema(rng, depth + 1),
                **rng.choice([{}, {"minItems": 1}, {"maxItems": 1}])}  # fmt: skip
    if pick == 8 and depth < 3:
        return random_object(rng, depth + 1)
    if pick == 9:
        return {"type": rng.sample(["string", "number", "integer", "boolean", "null"], 2)}
    if pick == 10:
        return {"type": "string", rng.choice(["minLength", "maxLength"]): rng.randrange(4)}
    if pick == 11:
        return {"type": "string", "pattern": rng.choice(PATTERNS)}
    if pick == 12:
        bound = rng.choice(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
        return {"type": rng.choice(["number", "integer"]), bound: rng.choice([0, 3, 2.5])}
    if pick == 13:
        return {"const": rng.choice(["a", 1])}
    return {"type": rng.choice(["string", "number", "integer", "boolean", "null", "object",
                                "array"])}  # fmt: skip


def random_object(rng: random.Random, depth: int) -> dict[str, Any]:
    names = rng.sample(NAMES, rng.randrange(1, 4))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: random_schema(rng, depth) for name in names},
    }
    if rng.random() < 0.5:
        schema["required"] = rng.sample([*names, "extra"], rng.randrange(1, 3))
    if rng.random() < 0.2:
        schema["additionalProperties"] = False
    return schema


def random_value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return rng.choice(STRINGS)
    if pick == 1:
        return rng.choice(NUMBERS)
    if pick == 2:
        return rng.choice([True, False])
    if pick == 3:
        return None
    if pick in (4, 5):
        return rng.choice(STRINGS + NUMBERS)
    if pick == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {name: random_value(rng, depth + 1) for name in rng.sample(NAMES, rng.randrange(4))}


def value_for(rng: random.Random, schema: Any) -> Any:
    """A value that is often valid against `schema` and often just not: the edges are where a
    fast check could go wrong."""
    if not isinstance(schema, dict) or rng.random() < 0.15:
        return random_value(rng, 1)
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return rng.choice(schema["enum"])
    kinds = schema.get("type")
    kind = rng.choice(kinds) if isinstance(kinds, list) else kinds
    if kind == "string":
        return rng.choice(STRINGS)
    if kind in ("number", "integer"):
        return rng.choice(NUMBERS)
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "array":
        return [value_for(rng, schema.get("items")) for _ in range(rng.randrange(3))]
    if kind == "object":
        properties = schema.get("properties", {})
        value = {n: value_for(rng, sub) for n, sub in properties.items() if rng.random() < 0.8}
        if rng.random() < 0.2:
            value[rng.choice(NAMES)] = random_value(rng, 2)
        return value
    return random_value(rng, 1)


def message(properties: Any, user_id: Any, raw: bool) -> dict[str, Any]:
    encoded = msgspec.json.encode(properties)
    return {
        "type": "track",
        "event": "E",
        "userId": user_id,
        "properties": msgspec.Raw(encoded) if raw else msgspec.json.decode(encoded),
    }


def verdict(rule: Rule, item: dict[str, Any], strict: bool) -> bool:
    decoded = {k: msgspec.json.decode(v) if type(v) is msgspec.Raw else v for k, v in item.items()}
    return _valid(rule, decoded) and not (strict and _unplanned(rule, decoded))


def test_fast_valid_implies_valid_over_generated_schemas() -> None:
    rng = random.Random(22)
    checked = fast_valid = valid = 0
    for _ in range(400):
        section = random_object(rng, 0) if rng.random() < 0.9 else random_schema(rng, 1)
        schema: dict[str, Any] = {"type": "object", "properties": {"properties": section}}
        if rng.random() < 0.3:
            schema["properties"]["userId"] = random_schema(rng, 2)
        if rng.random() < 0.2:
            schema["required"] = ["userId"]
        if rng.random() < 0.2:
            schema["$schema"] = "http://json-schema.org/draft-04/schema#"
        try:
            rule = Rule(schema, "properties")
        except Exception:  # e.g. a draft-4 schema with draft-7 keywords: refused by `apply`
            continue
        assert rule.fast is not None, schema
        for _ in range(15):
            properties = value_for(rng, section)
            user_id = rng.choice(["u1", None, 7, 2.5, True])
            for raw in (True, False):
                for strict in (False, True):
                    item = message(properties, user_id, raw)
                    fast = rule.fast.valid(item, strict)
                    truth = verdict(rule, item, strict)
                    assert not fast or truth, (schema, properties, user_id, raw, strict)
                    checked += 1
                    fast_valid += fast
                    valid += truth
    # The generator must exercise both answers, and the fast check must carry most valid events.
    assert checked > 20_000 and valid > 4_000
    assert fast_valid > valid * 0.6, (fast_valid, valid)


ORDER = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "properties": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "revenue": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "coupon": {"type": ["string", "null"]},
                "email": {"type": "string", "format": "email"},
                "products": {"type": "array", "items": {
                    "type": "object", "required": ["product_id"],
                    "properties": {"product_id": {"type": "string"},
                                   "quantity": {"type": "integer"}}}},
            },
            "required": ["order_id"],
        },
        "userId": {"type": ["string", "null"]},
        "context": {"type": "object"},
    },
    "required": ["userId"],
}  # fmt: skip
GOOD = {"order_id": "o1", "revenue": 25, "currency": "USD", "coupon": None,
        "email": "a@example.com", "products": [{"product_id": "p", "quantity": 1}]}  # fmt: skip


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "decoded"])
@pytest.mark.parametrize(
    ("change", "strict", "fast"),
    [
        pytest.param({}, False, True, id="valid"),
        pytest.param({}, True, True, id="valid-strict"),
        pytest.param({"extra": 1}, False, True, id="unplanned-allowed"),
        pytest.param({"extra": 1}, True, False, id="unplanned-strict"),
        pytest.param({"revenue": "25"}, False, False, id="wrong-type"),
        pytest.param({"revenue": -1}, False, False, id="below-minimum"),
        pytest.param({"revenue": True}, False, False, id="bool-is-not-a-number"),
        pytest.param({"currency": "USD\n"}, False, False, id="dollar-is-end-of-string"),
        pytest.param({"email": "nope"}, False, False, id="format"),
        pytest.param({"products": [{"quantity": 1}]}, False, False, id="nested-required"),
        pytest.param({"order_id": None}, False, False, id="null-is-not-a-string"),
    ],
)
def test_the_common_plan_shape_is_decided_fast(
    change: dict[str, Any], strict: bool, fast: bool, raw: bool
) -> None:
    rule = Rule(ORDER, "properties")
    assert rule.fast is not None
    item = message({**GOOD, **change}, "u1", raw)
    item["context"] = {"library": {"name": "analytics.js"}}
    assert rule.fast.valid(item, strict) is fast
    assert verdict(rule, item, strict) is fast  # here the fast check is also complete


def test_a_missing_required_message_field_is_not_fast_valid() -> None:
    rule = Rule(ORDER, "properties")
    assert rule.fast is not None
    item = message(GOOD, "u1", raw=True)
    del item["userId"]
    assert not rule.fast.valid(item, False)


def test_a_schema_with_refs_has_no_fast_check_and_is_still_enforced() -> None:
    schema = {
        "definitions": {"id": {"type": "string"}},
        "properties": {"properties": {"properties": {"order_id": {"$ref": "#/definitions/id"}}}},
    }
    rule = Rule(schema, "properties")
    assert rule.fast is None
    assert not _valid(rule, {"properties": {"order_id": 5}})
    assert _valid(rule, {"properties": {"order_id": "5"}})
