"""A destination's filters and mappings: editing them, and the live preview of their effect.

A filter or mapping form is read into the same document a workspace file holds
(`filter_from_form`, `mapping_from_form`). Saving applies it as a workspace change; previewing
puts the unsaved draft into a copy of the destination and runs the delivery engine's code on
one event (`preview.py`), so what the preview shows is what saving would do.

With no mappings configured a destination sends its presets. Saving a first mapping copies the
presets in too, so that adding one mapping never silently stops the others.

A filter whose condition is not valid FQL is refused when saved (the workspace check); one
stored before that check drops every event, so the page marks it and says so. Previewing such a
draft names it with the compiler's message (`invalid_filter`), never a bare "filtered".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.delivery.filters import FilterError, parse_filters
from sluice.destinations.base import Destination as DestinationClass
from sluice.destinations.registry import load
from sluice.errors import SluiceError
from sluice.store.base_event_store import EventQuery
from sluice.transform.stages import destination_stages
from sluice.ui.bridged import action_fields
from sluice.ui.changes import NotFound, apply_change, find_destination, message
from sluice.ui.debugger import SCAN_WINDOW
from sluice.ui.forms import FormError
from sluice.ui.preview import preview
from sluice.ui.site import Site, json_script, pretty_json, redirect
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Destination, Workspace
from sluice.workspace.sync import export_workspace

Endpoint = Callable[[Request], Awaitable[Response]]
FILTER_ACTIONS = ("drop", "sample", "drop_properties", "allow_properties", "json")
SAMPLE_EVENTS = 20
MAX_PREVIEW_BYTES = 256 * 1024


def _json(name: str, text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise FormError(name, f"not valid JSON ({exc})") from None


def filter_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """A filter document (Segment's shape, as in a workspace file) from the filter form."""
    kind = form.get("action", "drop")
    if kind == "json":
        actions = _json("actions", form.get("actions", "") or "[]")
    elif kind == "sample":
        try:
            percent = float(form.get("percent", "") or "nan") / 100
        except ValueError:
            raise FormError("percent", "expected a number from 0 to 100") from None
        action: dict[str, Any] = {"type": "sample", "percent": percent}
        if form.get("path", "").strip():
            action["path"] = form["path"].strip()
        actions = [action]
    elif kind in ("drop_properties", "allow_properties"):
        actions = [{"type": kind, "fields": _json("fields", form.get("fields", "") or "{}")}]
    else:
        actions = [{"type": "drop"}]
    doc: dict[str, Any] = {
        "title": form.get("title", "").strip(),
        "if": form.get("if", "").strip(),
        "actions": actions,
    }
    if form.get("description", "").strip():
        doc["description"] = form["description"].strip()
    if form.get("enabled") != "on":
        doc["enabled"] = False
    return doc


def filter_to_form(doc: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for a stored filter (the inverse of `filter_from_form`)."""
    actions = doc.get("actions") or []
    values = {
        "title": str(doc.get("title", "")),
        "if": str(doc.get("if", "")),
        "description": str(doc.get("description", "") or ""),
        "enabled": "on" if doc.get("enabled", True) else "",
        "action": "json",
        "actions": pretty_json(actions),
        "percent": "",
        "path": "",
        "fields": "",
    }
    if len(actions) == 1 and isinstance(actions[0], dict):
        action = actions[0]
        kind = str(action.get("type", "")).lower()
        if kind == "drop":
            values["action"] = "drop"
        elif kind == "sample":
            values.update(action="sample", percent=f"{float(action.get('percent', 0)) * 100:g}")
            values["path"] = str(action.get("path") or "")
        elif kind in ("drop_properties", "allow_properties"):
            values.update(action=kind, fields=pretty_json(action.get("fields", {})))
    return values


def mapping_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "action": form.get("action", ""),
        "trigger": form.get("trigger", "").strip(),
        "mapping": _json("mapping", form.get("mapping", "") or "{}"),
    }
    if form.get("name", "").strip():
        doc["name"] = form["name"].strip()
    if form.get("enabled") != "on":
        doc["enabled"] = False
    return doc


def mapping_to_form(doc: Mapping[str, Any]) -> dict[str, str]:
    return {
        "action": str(doc.get("action", "")),
        "name": str(doc.get("name", "") or ""),
        "trigger": str(doc.get("trigger", "") or ""),
        "mapping": pretty_json(doc.get("mapping") or {}),
        "enabled": "on" if doc.get("enabled", True) else "",
    }


def presets_of(cls: type[DestinationClass]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "action": p.action, "trigger": p.trigger, "mapping": dict(p.mapping)}
        for p in cls.presets
    ]


def with_draft(
    destination: Destination, kind: str, index: int | None, draft: dict[str, Any]
) -> list[dict[str, Any]]:
    """The destination's filters or mappings with `draft` saved at `index` (None: appended)."""
    cls = load(destination.type)
    if kind == "filter":
        items = [dict(f) for f in destination.filters]
    else:
        items = [dict(m) for m in destination.mappings] or presets_of(cls)
    if index is None or not 0 <= index < len(items):
        items.append(draft)
    else:
        items[index] = draft
    return items


def _index(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def stored_filter_errors(destination: Destination) -> tuple[dict[int, str], str]:
    """The stored filters' problems, as delivery sees them: per filter, why its condition does
    not compile; and what makes the list unusable as a whole (the destination is then not
    delivered at all). A stored document may predate the check saving makes."""
    try:
        filters = parse_filters(destination.filters)
    except FilterError as exc:
        return {}, str(exc)
    return {i: f.error for i, f in enumerate(filters) if f.error is not None}, ""


def routes(site: Site) -> list[Route]:
    def recent(destination: Destination) -> list[dict[str, Any]]:
        """The newest events the destination could get, as samples for the preview."""
        log = site.log
        end = log.last_seq()
        sources: list[str | None] = [*destination.sources] or [None]
        found = []
        for source in sources:
            query = EventQuery(SAMPLE_EVENTS, source, after_seq=max(end - SCAN_WINDOW, 0))
            found.extend(log.newest(query))
        found.sort(key=lambda e: -e.seq)
        return [
            {
                "label": f"{e.type} {e.event or ''} · {e.message_id}",
                "source": e.source_id,
                "event": msgspec.json.decode(e.payload),
            }
            for e in found[:SAMPLE_EVENTS]
        ]

    def load_page(destination_id: str) -> dict[str, Any]:
        ws = export_workspace(site.store)
        _, destination = find_destination(ws, destination_id)
        cls = load(destination.type)
        samples = recent(destination)
        filter_errors, filters_error = stored_filter_errors(destination)
        dropping = [
            (i, destination.filters[i].get("title", ""))
            for i in filter_errors
            if destination.filters[i].get("enabled", True) is not False
        ]
        return {
            "destination": destination,
            "filter_errors": filter_errors,
            "filters_error": filters_error,
            "dropping": dropping,
            "cls": cls,
            "presets": presets_of(cls),
            "samples": samples,
            "samples_json": json_script(samples),
            "presets_json": json_script(presets_of(cls)),
            "action_fields": action_fields(cls),
        }

    async def render(
        request: Request,
        destination_id: str,
        status: int = 200,
        error: str = "",
        editing: str = "",
        filter_form: dict[str, str] | None = None,
        mapping_form: dict[str, str] | None = None,
        index: str = "",
    ) -> Response:
        try:
            data = await site.run(load_page, destination_id)
        except NotFound:
            return site.render(
                request, "not_found.html", status=404, what=f"destination {destination_id}"
            )
        destination: Destination = data["destination"]
        query = request.query_params
        if not editing and "filter" in query:
            editing, index = "filter", query["filter"]
        if not editing and "mapping" in query:
            editing, index = "mapping", query["mapping"]
        n = _index(index)
        in_range = n is not None and n < len(destination.filters)
        if editing == "filter" and filter_form is None and in_range:
            assert n is not None
            filter_form = filter_to_form(destination.filters[n])
        if editing == "mapping" and mapping_form is None:
            mappings = destination.mappings or data["presets"]
            if n is not None and n < len(mappings):
                mapping_form = mapping_to_form(mappings[n])
        empty_filter = {"enabled": "on", "action": "drop"}
        empty_mapping = {"enabled": "on", "action": next(iter(data["cls"].actions), "")}
        return site.render(
            request,
            "rules.html",
            status=status,
            tab="rules",
            error=error,
            editing=editing,
            index="" if n is None else str(n),
            filter_form=filter_form or empty_filter,
            mapping_form=mapping_form or empty_mapping,
            filter_actions=FILTER_ACTIONS,
            **data,
        )

    async def page(request: Request) -> Response:
        return await render(request, request.path_params["destination_id"])

    async def save(request: Request, kind: str) -> Response:
        destination_id = request.path_params["destination_id"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        index = _index(form.get("index"))
        forms: dict[str, Any] = {f"{kind}_form": form}
        try:
            draft = filter_from_form(form) if kind == "filter" else mapping_from_form(form)
        except FormError as exc:
            return await render(
                request, destination_id, 400, str(exc), kind, index=form.get("index", ""), **forms
            )

        def change(ws: Workspace) -> None:
            _, destination = find_destination(ws, destination_id)
            items = with_draft(destination, kind, index, draft)
            if kind == "filter":
                destination.filters = items
            else:
                destination.mappings = items

        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return site.render(
                request, "not_found.html", status=404, what=f"destination {destination_id}"
            )
        except WorkspaceError as exc:
            return await render(
                request,
                destination_id,
                400,
                message(exc, "destinations"),
                kind,
                index=form.get("index", ""),
                **forms,
            )
        return redirect(f"/destinations/{destination_id}/rules", f"{kind.capitalize()} saved.")

    async def remove(request: Request, kind: str) -> Response:
        destination_id = request.path_params["destination_id"]
        index = int(request.path_params["index"])
        left: list[int] = []

        def change(ws: Workspace) -> None:
            _, destination = find_destination(ws, destination_id)
            items = destination.filters if kind == "filter" else destination.mappings
            if not 0 <= index < len(items):
                raise NotFound(f"no {kind} #{index}")
            del items[index]
            left.append(len(items))

        try:
            await site.run(apply_change, site.store, change)
        except NotFound as exc:
            return redirect(f"/destinations/{destination_id}/rules", f"Not removed: {exc}")
        except WorkspaceError as exc:
            return redirect(f"/destinations/{destination_id}/rules", f"Not removed: {exc}")
        note = " The presets apply again." if kind == "mapping" and left == [0] else ""
        return redirect(
            f"/destinations/{destination_id}/rules", f"{kind.capitalize()} removed.{note}"
        )

    async def run_preview(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        body = await request.body()
        if len(body) > MAX_PREVIEW_BYTES:
            return JSONResponse({"ok": False, "error": "the event is too large"}, 413)
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return JSONResponse({"ok": False, "error": f"not valid JSON: {exc}"}, 400)
        if not isinstance(data, dict):
            return JSONResponse({"ok": False, "error": "expected a JSON object"}, 400)
        result = await site.run(preview_draft, destination_id, data)
        return JSONResponse(msgspec.to_builtins(result))

    def preview_draft(destination_id: str, data: dict[str, Any]) -> dict[str, Any]:
        try:
            _, destination = find_destination(export_workspace(site.store), destination_id)
        except NotFound as exc:
            return {"ok": False, "error": str(exc)}
        doc = msgspec.to_builtins(destination)
        draft = data.get("draft")
        if isinstance(draft, dict) and draft.get("kind") in ("filter", "mapping"):
            fields = draft.get("form") or {}
            if not isinstance(fields, dict):
                return {"ok": False, "error": "the draft's form must be a JSON object"}
            form = {str(k): str(v) for k, v in fields.items()}
            kind = draft["kind"]
            try:
                parsed = filter_from_form(form) if kind == "filter" else mapping_from_form(form)
                items = with_draft(destination, kind, _index(form.get("index")), parsed)
            except (FormError, SluiceError) as exc:
                return {"ok": False, "error": str(exc)}
            doc["filters" if kind == "filter" else "mappings"] = items
        event = data.get("event")
        if isinstance(event, str):
            try:
                event = msgspec.json.decode(event)
            except msgspec.DecodeError as exc:
                return {"ok": False, "error": f"the event is not valid JSON: {exc}"}
        source = data.get("source")
        stage = destination_stages(site.store).get(destination_id)  # its transformations, PII
        return preview(doc, event, source if isinstance(source, str) else None, stage)

    def bound(handler: Callable[[Request, str], Awaitable[Response]], kind: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await handler(request, kind)

        return endpoint

    prefix = "/destinations/{destination_id}"
    return [
        Route(f"{prefix}/rules", page, methods=["GET"]),
        Route(f"{prefix}/preview", run_preview, methods=["POST"]),
        Route(f"{prefix}/filters", bound(save, "filter"), methods=["POST"]),
        Route(f"{prefix}/mappings", bound(save, "mapping"), methods=["POST"]),
        Route(f"{prefix}/filters/{{index:int}}/delete", bound(remove, "filter"), methods=["POST"]),
        Route(
            f"{prefix}/mappings/{{index:int}}/delete", bound(remove, "mapping"), methods=["POST"]
        ),
    ]
