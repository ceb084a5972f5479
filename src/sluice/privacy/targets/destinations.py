"""Deletion requests to the destinations that have a deletion API: Amplitude, Mixpanel, PostHog.

Each destination module builds its vendor's documented request (`deletion_requests`); this
sends them as deliveries are sent (delivery/sender.py: the egress policy, the destination's
`endpoint` setting, no secret in what is kept). Vendors treat a repeated deletion of the same
ids as one, so a call after a crash sends every request again.

An answer other than 2xx stops the call: 408, 429, 5xx, timeouts and connection errors are
RETRYING (the runner calls again), other 4xx (bad credentials, a missing project) are FAILED,
as are missing settings. The outcome's detail names the status and the vendor's words, with
every credential of the destination replaced by `***`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

from sluice.delivery.exchange import Redactor
from sluice.delivery.sender import new_session, send
from sluice.destinations.base import (
    EGRESS_DENIED,
    RETRYABLE_STATUSES,
    Destination,
    OutRequest,
    Response,
)
from sluice.privacy.targets.base import OutcomeStatus, Subject, TargetOutcome

MAX_DETAIL_BODY = 300  # characters of the vendor's answer kept in the outcome
Build = Callable[[str, Subject], list[OutRequest]]


class DestinationTarget:
    """One destination's deletion API, called for a subject's ids."""

    def __init__(
        self,
        destination_id: str,
        destination: Destination,
        vendor: str,
        build: Build,
        *,
        missing: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.destination_id = destination_id
        self.destination = destination
        self.vendor = vendor
        self._build = build
        self._missing = missing  # a setting the API needs and the destination lacks
        self._timeout_s = timeout_s or destination.timeout_s

    @property
    def name(self) -> str:
        return f"destination:{self.destination_id}"

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        if self._missing is not None:
            return self._outcome("FAILED", self._missing)
        try:
            requests = self._build(regulation_id, subject)
        except NotSupportedSubject as exc:
            return self._outcome("NOT_SUPPORTED", str(exc))
        async with new_session(limit=4) as session:
            for n, request in enumerate(requests, 1):
                response = await send(session, request, self._timeout_s)
                if not 200 <= response.status < 300:
                    status, why = _judge(response)
                    sent = f" (request {n} of {len(requests)})" if len(requests) > 1 else ""
                    return self._outcome(status, f"{self.vendor} answered {why}{sent}")
        ids = len(subject.ids)
        return self._outcome(
            "FINISHED",
            f"{self.vendor} accepted the deletion of {ids} id{'s' * (ids != 1)}"
            f" ({len(requests)} request{'s' * (len(requests) != 1)})",
            removed=ids,
        )

    def _outcome(self, status: OutcomeStatus, text: str, removed: int = 0) -> TargetOutcome:
        detail = Redactor(self.secrets()).text(f"destination {self.destination_id}: {text}")
        return TargetOutcome(self.name, status, detail, removed)

    def secrets(self) -> list[str]:
        """The destination's credentials as they could appear in an answer (also as the
        base64 of HTTP Basic's `key:secret`)."""
        plain = list(self.destination.secret_values)
        pairs = [f"{a}:{b}" for a in plain for b in plain if a != b]
        return plain + [base64.b64encode(p.encode()).decode() for p in pairs]


class NotSupportedSubject(Exception):
    """The API deletes by other ids than the subject's kind."""


def _judge(response: Response) -> tuple[OutcomeStatus, str]:
    if response.status == 0:
        text = response.error or "no answer"
        return ("FAILED" if EGRESS_DENIED in text else "RETRYING"), f"nothing: {text}"
    body = response.body[:MAX_DETAIL_BODY].decode("utf-8", "replace").strip()
    why = f"HTTP {response.status}" + (f": {body}" if body else "")
    if response.status in RETRYABLE_STATUSES or response.status >= 500:
        return "RETRYING", why
    return "FAILED", why


def amplitude_target(destination_id: str, destination: Destination) -> DestinationTarget:
    from sluice.destinations.amplitude import Amplitude

    assert isinstance(destination, Amplitude)
    missing = None
    if not destination.settings.secret_key:
        missing = (
            "Amplitude's User Privacy API needs the project's secret key: set"
            " settings.secret_key (Segment: secretKey)"
        )

    def build(regulation_id: str, subject: Subject) -> list[OutRequest]:
        if subject.type != "USER_ID":
            raise NotSupportedSubject(
                "Amplitude deletes by user id or Amplitude id, not by anonymous or object id"
            )
        return destination.deletion_requests(f"Sluice regulation {regulation_id}", subject.ids)

    return DestinationTarget(destination_id, destination, "Amplitude", build, missing=missing)


def mixpanel_target(destination_id: str, destination: Destination) -> DestinationTarget:
    from sluice.destinations.mixpanel import Mixpanel

    assert isinstance(destination, Mixpanel)
    missing = None
    if not destination.settings.gdpr_api_token:
        missing = (
            "Mixpanel's GDPR API needs a GDPR OAuth token: set settings.gdpr_api_token (Mixpanel:"
            " Profile & Preferences, Data & Privacy)"
        )
    return DestinationTarget(
        destination_id,
        destination,
        "Mixpanel",
        lambda _regulation, subject: destination.deletion_requests(_distinct_ids(subject)),
        missing=missing,
    )


def posthog_target(destination_id: str, destination: Destination) -> DestinationTarget:
    from sluice.destinations.posthog import PostHog

    assert isinstance(destination, PostHog)
    needed = [
        f"settings.{name}"
        for name in ("personal_api_key", "project_id")
        if not getattr(destination.settings, name)
    ]
    missing = None
    if needed:
        missing = (
            "PostHog's persons API needs a personal API key (scope person:write) and the"
            f" project id: set {' and '.join(needed)}"
        )
    return DestinationTarget(
        destination_id,
        destination,
        "PostHog",
        lambda _regulation, subject: destination.deletion_requests(_distinct_ids(subject)),
        missing=missing,
    )


def _distinct_ids(subject: Subject) -> Sequence[str]:
    """Mixpanel's and PostHog's distinct id is the userId, else the anonymousId, as sent."""
    if subject.type == "OBJECT_ID":
        raise NotSupportedSubject("deletes people by distinct id (user or anonymous id only)")
    return subject.ids


# Native destination types (registry ids) with a deletion API, and how to call it.
DELETION_APIS: dict[str, Callable[[str, Destination], DestinationTarget]] = {
    "amplitude": amplitude_target,
    "mixpanel": mixpanel_target,
    "posthog": posthog_target,
}
