"""`compile(copy=False)`: the delivery engine's no-copy evaluators read the event in place."""

from __future__ import annotations

from sluice.mapping import compile


def test_copying_evaluator_owns_its_output() -> None:
    event = {"properties": {"a": [1, 2]}}
    out = compile({"p": {"@path": "$.properties"}})(event)
    out["p"]["a"].append(3)
    assert event == {"properties": {"a": [1, 2]}}


def test_no_copy_evaluator_shares_objects_with_the_event() -> None:
    event = {"properties": {"a": [1, 2]}}
    out = compile({"p": {"@path": "$.properties"}, "all": {"@path": "$"}}, copy=False)(event)
    assert out["p"] is event["properties"] and out["all"] is event


def test_both_kinds_are_cached_apart() -> None:
    mapping = {"p": {"@path": "$.properties"}}
    assert compile(mapping) is compile(mapping)
    assert compile(mapping, copy=False) is compile(mapping, copy=False)
    assert compile(mapping) is not compile(mapping, copy=False)
