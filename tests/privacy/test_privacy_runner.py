"""The runner's bookkeeping on both backends: legs recorded as they answer, the log leg first,
errors tried again then FAILED, and the overall status Segment's way (PARTIAL_SUCCESS when only
a destination failed). The warehouse and destination legs here are small targets of the test,
standing in for `privacy/targets/external.py` (another branch); log, archive and profiles are
the real ones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import msgspec

from sluice.config import Settings
from sluice.privacy.regulation import RegulationRequest, create_regulation
from sluice.privacy.runner import MAX_LEG_ERRORS, RegulationRunner
from sluice.privacy.targets.base import Subject, Target, TargetOutcome
from sluice.store.base import AppendBatch, NewEvent, Store
from sluice.store.base_privacy import RegulationRow


@dataclass
class ScriptedTarget:
    """A target that answers from a script: "raise", or an outcome status."""

    name: str
    script: list[str]
    calls: list[Subject] = field(default_factory=list)

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        self.calls.append(subject)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "raise":
            raise ConnectionError("the API did not answer")
        return TargetOutcome(self.name, step, f"{self.name}: {step}")  # type: ignore[arg-type]


class Runner(RegulationRunner):
    def __init__(self, settings: Settings, store: Store, extra: list[ScriptedTarget]) -> None:
        super().__init__(settings, store)
        self.extra = extra

    def external_targets(self) -> list[Target]:
        return list(self.extra)


def regulation(store: Store, kind: str = "DELETE_ONLY") -> RegulationRow:
    batch = AppendBatch()
    for user in ("gone", "kept"):
        body = msgspec.json.encode({"type": "track", "userId": user, "messageId": f"m-{user}"})
        batch.events.append(NewEvent("web", f"m-{user}", "track", None, 1, body))
    store.append(batch)
    req = RegulationRequest(regulation_type=kind, subject_type="USER_ID", subject_ids=["gone"])
    return create_regulation(store, req)


def run(runner: RegulationRunner, store: Store, regulation_id: str) -> str:
    reg = store.regulation(regulation_id)
    assert reg is not None
    return asyncio.run(runner.advance(reg))


def test_legs_are_recorded_and_a_passing_error_is_tried_again(
    settings: Settings, store: Store
) -> None:
    reg = regulation(store)
    flaky = ScriptedTarget("destination:amp", ["raise", "FINISHED"])
    warehouse = ScriptedTarget("warehouse:main", ["FINISHED"])
    runner = Runner(settings, store, [warehouse, flaky])
    assert run(runner, store, reg.id) == "RUNNING"
    legs = {leg.target: leg.status for leg in store.regulation_legs(reg.id)}
    assert legs == {"log": "FINISHED", "archive": "FINISHED", "profiles": "FINISHED",
                    "warehouse:main": "FINISHED", "destination:amp": "RETRYING"}  # fmt: skip
    assert (store.regulation(reg.id) or reg).status == "RUNNING"
    assert run(runner, store, reg.id) == "FINISHED"
    assert len(warehouse.calls) == 1  # a finished leg is not run again
    assert flaky.calls == [Subject("USER_ID", ("gone",))] * 2
    done = store.regulation(reg.id)
    assert done is not None and done.status == "FINISHED" and done.subject_ids == ()
    assert [msgspec.json.decode(e.payload)["userId"] for e in store.read_after(0, 10)] == ["kept"]
    assert store.pending_regulations() == []


def test_a_destination_failing_is_partial_success_and_sluices_own_is_failed(
    settings: Settings, store: Store
) -> None:
    partial = regulation(store)
    runner = Runner(settings, store, [ScriptedTarget("destination:amp", ["FAILED"])])
    assert run(runner, store, partial.id) == "PARTIAL_SUCCESS"
    failed = regulation(store)
    broken = ScriptedTarget("warehouse:main", ["raise"])
    runner = Runner(settings, store, [broken])
    statuses = [run(runner, store, failed.id) for _ in range(MAX_LEG_ERRORS)]
    assert statuses == ["RUNNING"] * (MAX_LEG_ERRORS - 1) + ["FAILED"]
    leg = {leg.target: leg for leg in store.regulation_legs(failed.id)}["warehouse:main"]
    assert leg.status == "FAILED" and "ConnectionError" in leg.detail
    assert store.regulation_counts() == {"PARTIAL_SUCCESS": 1, "FAILED": 1}


def test_each_type_reaches_its_targets(settings: Settings, store: Store) -> None:
    reg = regulation(store, "DELETE_INTERNAL")
    destination = ScriptedTarget("destination:amp", ["FINISHED"])
    warehouse = ScriptedTarget("warehouse:main", ["FINISHED"])
    runner = Runner(settings, store, [warehouse, destination])

    def names(kind: str, source_id: str | None = None) -> list[str]:
        row = RegulationRow(
            "r", kind, "USER_ID", ("u",), 1, source_id, "INITIALIZED", "", 0, 0, None, 0
        )
        return [t.name for t in runner.targets(row)]

    own = ["log", "archive", "profiles"]
    assert names("DELETE_INTERNAL") == [*own, "warehouse:main"]
    assert names("SUPPRESS_WITH_DELETE_INTERNAL") == [*own, "warehouse:main"]
    assert names("DELETE_ONLY") == [*own, "warehouse:main", "destination:amp"]
    assert names("SUPPRESS_WITH_DELETE") == [*own, "warehouse:main", "destination:amp"]
    assert names("DELETE_ONLY", "web") == ["log", "archive"]  # the source's rows and files
    assert names("DELETE_ARCHIVE_ONLY", "web") == ["archive"]
    # A DELETE_INTERNAL never reaches a destination.
    assert run(runner, store, reg.id) == "FINISHED"
    assert not destination.calls and len(warehouse.calls) == 1
