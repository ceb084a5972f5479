"""Deletion through Segment's own destination code: a bridged destination's `onDelete`.

Segment's Actions destinations may define `onDelete(request, {settings, payload: {userId,
anonymousId}})`, which Segment calls for a deletion regulation; the bridge's sidecar runs it
(op `delete`, bridge/js/sidecar.js) exactly as Segment would, its requests sent by Python as
deliveries' are (egress policy, the destination's `delivery.base_url`). One call per id.

A definition without `onDelete` answers NOT_SUPPORTED; an error Segment's code throws with an
HTTP status of 408, 429 or 5xx, a timeout or a dead sidecar is RETRYING; another status is
FAILED. Details are redacted of the destination's secrets.
"""

from __future__ import annotations

from collections.abc import Callable

from sluice.bridge.destination import BridgedDestination
from sluice.bridge.errors import SidecarDied
from sluice.bridge.results import ExecuteResult
from sluice.bridge.sidecar import Sidecar
from sluice.delivery.exchange import Redactor
from sluice.delivery.sender import new_session
from sluice.destinations.base import RETRYABLE_STATUSES
from sluice.privacy.targets.base import OutcomeStatus, Subject, TargetOutcome

NO_ON_DELETE = "has no onDelete"  # the sidecar's words for a definition without one


class BridgedTarget:
    """One bridged destination's `onDelete`, run for each of a subject's ids."""

    def __init__(
        self,
        destination_id: str,
        destination: BridgedDestination,
        sidecar: Callable[[], Sidecar],
        timeout_s: float | None = None,
    ) -> None:
        self.destination_id = destination_id
        self.destination = destination
        self._sidecar = sidecar
        self._timeout_s = timeout_s or destination.timeout_s

    @property
    def name(self) -> str:
        return f"destination:{self.destination_id}"

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        if subject.type == "OBJECT_ID":
            return self._outcome("NOT_SUPPORTED", "onDelete takes a user or anonymous id only")
        key = "userId" if subject.type == "USER_ID" else "anonymousId"
        sidecar = self._sidecar()
        async with new_session(limit=4) as session:
            for n, subject_id in enumerate(subject.ids, 1):
                event = {"type": "delete", key: subject_id}
                try:
                    result = await self.destination.delete_user(
                        sidecar, session, event, self._timeout_s
                    )
                except (SidecarDied, TimeoutError) as exc:
                    why = str(exc) or type(exc).__name__
                    return self._outcome("RETRYING", f"the bridge failed: {why}")
                judged = _judge(result)
                if judged is not None:
                    status, why = judged
                    of = f" (id {n} of {len(subject.ids)})" if len(subject.ids) > 1 else ""
                    return self._outcome(status, f"{why}{of}")
        name = self.destination.entry.name
        ids = len(subject.ids)
        return self._outcome(
            "FINISHED", f"{name}'s onDelete ran for {ids} id{'s' * (ids != 1)}", removed=ids
        )

    def _outcome(self, status: OutcomeStatus, text: str, removed: int = 0) -> TargetOutcome:
        redactor = Redactor(self.destination.secret_values)
        detail = redactor.text(f"destination {self.destination_id}: {text}")
        return TargetOutcome(self.name, status, detail, removed)


def _judge(result: ExecuteResult) -> tuple[OutcomeStatus, str] | None:
    """None when onDelete succeeded; else the status and why."""
    error = result.error
    if error is None and result.ok:
        return None
    if error is None:
        return "RETRYING", "onDelete gave no answer"
    if NO_ON_DELETE in error.message:
        return "NOT_SUPPORTED", "Segment's definition of this destination has no onDelete"
    last = result.exchanges[-1] if result.exchanges else None
    status = error.status or (last.status if last is not None else 0)
    why = f"onDelete failed: {error.name}: {error.message}"
    if status:
        why += f" (HTTP {status})"
    network = last is not None and last.error is not None  # no answer: a timeout, a refusal
    if (status == 0 and network) or status in RETRYABLE_STATUSES or status >= 500:
        return "RETRYING", why
    return "FAILED", why  # a 4xx, or Segment's code failed before any request
