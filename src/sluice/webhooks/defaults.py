"""The built-in mappings of webhook deliveries to Spec events, per provider and event type.

Named as Segment's cloud sources and its source-function templates name them, so a team moving
from Segment keeps its event names: Stripe's `charge.succeeded` is "Charge Succeeded", a
Shopify order is "Order Completed" with Segment's e-commerce properties, a GitHub delivery is
tracked for the user who caused it (`sender.id`, as Segment's GitHub template does) and named
"<Event> <Action>". A source's own `mappings` win over these; a type with neither is tracked
under its own name with the payload as properties (`unmapped: track`) or dropped.
"""

from __future__ import annotations

from typing import Any


def _paths(**fields: str) -> dict[str, Any]:
    return {name: {"@path": f"$.payload.{path}"} for name, path in fields.items()}


def _track(event: str, user: str | None, **properties: str) -> dict[str, Any]:
    mapping: dict[str, Any] = {"type": "track", "event": event, "properties": _paths(**properties)}
    if user:
        mapping["userId"] = {"@path": f"$.payload.{user}"}
    return mapping


def _github() -> dict[str, dict[str, Any]]:
    """GitHub's common deliveries (type = `X-GitHub-Event` + `.action`)."""
    repo = {"repository": "repository.full_name", "sender": "sender.login"}
    pull = dict(
        number="number",
        title="pull_request.title",
        state="pull_request.state",
        merged="pull_request.merged",
        url="pull_request.html_url",
        base="pull_request.base.ref",
        head="pull_request.head.ref",
        **repo,
    )
    issue = dict(
        number="issue.number",
        title="issue.title",
        state="issue.state",
        url="issue.html_url",
        **repo,
    )
    events: dict[str, dict[str, Any]] = {
        "push": _track("Push", "sender.id", ref="ref", before="before", after="after",
                       commits="commits.length", compare="compare", **repo),
        "star.created": _track("Star Created", "sender.id",
                               stargazers="repository.stargazers_count", **repo),
        "star.deleted": _track("Star Deleted", "sender.id",
                               stargazers="repository.stargazers_count", **repo),
        "fork": _track("Fork", "sender.id", fork="forkee.full_name", **repo),
        "release.published": _track("Release Published", "sender.id", tag="release.tag_name",
                                    name="release.name", url="release.html_url", **repo),
        "issue_comment.created": _track("Issue Comment Created", "sender.id",
                                        number="issue.number", url="comment.html_url", **repo),
    }  # fmt: skip
    for action in ("opened", "closed", "reopened", "edited"):
        events[f"pull_request.{action}"] = _track(f"Pull Request {action.capitalize()}",
                                                  "sender.id", **pull)  # fmt: skip
        events[f"issues.{action}"] = _track(f"Issues {action.capitalize()}", "sender.id", **issue)
    return events


def _twilio() -> dict[str, dict[str, Any]]:
    """Twilio's status callbacks (type = `message.<MessageStatus>` / `call.<CallStatus>`); the
    form's fields as snake_case properties. No user: a phone number is not an id Sluice can
    trust, so the delivery's id stands in (override with a source mapping)."""
    message = dict(message_sid="MessageSid", status="MessageStatus", to="To",
                   **{"from": "From"}, account_sid="AccountSid", error_code="ErrorCode",
                   error_message="ErrorMessage")  # fmt: skip
    call = dict(
        call_sid="CallSid",
        status="CallStatus",
        to="To",
        **{"from": "From"},
        account_sid="AccountSid",
        duration="CallDuration",
        direction="Direction",
    )
    events: dict[str, dict[str, Any]] = {}
    for status in ("queued", "sending", "sent", "delivered", "undelivered", "failed",
                   "received", "read"):  # fmt: skip
        events[f"message.{status}"] = _track(f"Message {status.capitalize()}", None, **message)
    for status in ("initiated", "ringing", "answered", "in-progress", "completed", "busy",
                   "no-answer", "canceled", "failed"):  # fmt: skip
        title = " ".join(w.capitalize() for w in status.split("-"))
        events[f"call.{status}"] = _track(f"Call {title}", None, **call)
    return events


_STRIPE_OBJECT = "data.object"
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "stripe": {
        "charge.succeeded": _track(
            "Charge Succeeded", f"{_STRIPE_OBJECT}.customer", charge_id=f"{_STRIPE_OBJECT}.id",
            amount=f"{_STRIPE_OBJECT}.amount", currency=f"{_STRIPE_OBJECT}.currency",
            paid=f"{_STRIPE_OBJECT}.paid", status=f"{_STRIPE_OBJECT}.status",
        ),
        "customer.created": {
            "type": "identify",
            "userId": {"@path": f"$.payload.{_STRIPE_OBJECT}.id"},
            "traits": _paths(email=f"{_STRIPE_OBJECT}.email", name=f"{_STRIPE_OBJECT}.name",
                             phone=f"{_STRIPE_OBJECT}.phone",
                             createdAt=f"{_STRIPE_OBJECT}.created"),
        },
        "customer.subscription.created": _track(
            "Subscription Created", f"{_STRIPE_OBJECT}.customer",
            subscription_id=f"{_STRIPE_OBJECT}.id", status=f"{_STRIPE_OBJECT}.status",
            plan_id=f"{_STRIPE_OBJECT}.plan.id",
        ),
        "customer.subscription.trial_will_end": _track(
            "Trial Ending Soon", f"{_STRIPE_OBJECT}.customer",
            subscription_id=f"{_STRIPE_OBJECT}.id", trial_end=f"{_STRIPE_OBJECT}.trial_end",
        ),
        "invoice.paid": _track(
            "Invoice Paid", f"{_STRIPE_OBJECT}.customer", invoice_id=f"{_STRIPE_OBJECT}.id",
            amount_paid=f"{_STRIPE_OBJECT}.amount_paid", currency=f"{_STRIPE_OBJECT}.currency",
        ),
    },
    "shopify": {
        "orders/create": {
            "type": "track",
            "event": "Order Completed",
            "userId": {"@path": "$.payload.customer.id"},
            "properties": {
                **_paths(order_id="id", total="total_price", subtotal="subtotal_price",
                         tax="total_tax", discount="total_discounts", currency="currency"),
                "products": {"@arrayPath": ["$.payload.line_items", {
                    "product_id": {"@path": "$.product_id"}, "sku": {"@path": "$.sku"},
                    "name": {"@path": "$.title"}, "price": {"@path": "$.price"},
                    "quantity": {"@path": "$.quantity"}}]},
            },
        },
        "orders/cancelled": _track("Order Cancelled", "customer.id", order_id="id",
                                   total="total_price", currency="currency"),
        "refunds/create": _track("Order Refunded", None, order_id="order_id",
                                 refund_id="id"),
        "checkouts/create": _track("Checkout Started", "customer.id", checkout_id="id",
                                   value="total_price", currency="currency"),
        "customers/create": {
            "type": "identify",
            "userId": {"@path": "$.payload.id"},
            "traits": _paths(email="email", firstName="first_name", lastName="last_name",
                             phone="phone", createdAt="created_at"),
        },
    },
    "github": _github(),
    "twilio": _twilio(),
}  # fmt: skip
