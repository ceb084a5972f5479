"""Destinations: the catalog (the registry's types, and Segment's from the installed bridge),
adding one, its settings, on/off, and "Test connection" for Segment's.

The settings form is generated from the destination's `Settings` Struct (`forms.py`), or for
one of Segment's destinations from its definition's auth fields (`bridged.py`); what a form
submits becomes a workspace change checked as `sluice apply` checks a file (`changes.py`), and
its errors are shown next to the form with the values kept.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.delivery.stats import destination_stats
from sluice.destinations.base import Destination as DestinationClass
from sluice.destinations.registry import known_types, load
from sluice.errors import SluiceError
from sluice.ui.bridged import (
    entry_of,
    form_fields,
    new_settings,
    segment_catalog,
    settings_from_form,
    shown_settings,
    with_base_url,
)
from sluice.ui.changes import NotFound, apply_change, find_destination, local_path, message
from sluice.ui.connection import check_connection
from sluice.ui.device import device_context, device_type_names
from sluice.ui.forms import FormError
from sluice.ui.site import Site, redirect
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Destination, Workspace
from sluice.workspace.sync import export_workspace


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    type: str
    name: str
    summary: str
    actions: tuple[str, ...]
    presets: int
    error: str = ""


@functools.cache
def catalog() -> tuple[CatalogEntry, ...]:
    """Every destination type the registry knows, built-ins and plug-ins.

    Kept for the life of the process: the registry only changes when packages are installed,
    and reading entry points costs milliseconds per lookup.
    """
    entries = []
    for type_id in known_types():
        try:
            cls = load(type_id)
        except (SluiceError, ImportError, AttributeError) as exc:
            entries.append(CatalogEntry(type_id, type_id, "", (), 0, str(exc)))
            continue
        summary = _first_line(cls.__doc__) or _first_line(sys.modules[cls.__module__].__doc__)
        actions = tuple(a.title for a in cls.actions.values())
        entries.append(CatalogEntry(type_id, cls.name, summary, actions, len(cls.presets)))
    return tuple(sorted(entries, key=lambda e: e.name.lower()))


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def suggest_id(type_id: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]", "-", type_id.lower().removeprefix("segment:"))[:60]
    base = base or "destination"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _form_values(form: FormData) -> dict[str, str]:
    return {k: str(v) for k, v in form.items()}


def routes(site: Site) -> list[Route]:
    def load_list() -> dict[str, Any]:
        ws = export_workspace(site.store)
        stats = destination_stats(site.store)
        entries = catalog()
        segment = segment_catalog()
        names = {e.type: e.name for e in entries}
        names.update({c.type: c.name for _, _, _, cards in segment.groups for c in cards})
        device = device_type_names(site.settings.data_dir)

        def type_name(d: Destination) -> str:
            return (device if d.mode == "device" else names).get(d.type, d.type)

        return {
            "destinations": [(d, type_name(d), stats.get(d.id, {})) for d in ws.destinations],
            "catalog": entries,
            "segment": segment,
        }

    async def list_page(request: Request) -> Response:
        return site.render(request, "destinations.html", **await site.run(load_list))

    def form_context(type_id: str, destination: Destination | None) -> dict[str, Any]:
        """What the form shows: the type's fields, and the destination's values (or defaults)."""
        cls: type[DestinationClass] = load(type_id)
        ws = export_workspace(site.store)
        fields = form_fields(cls)
        taken = {d.id for d in ws.destinations}
        saved = shown_settings(cls, destination.settings) if destination else {}
        values = {
            "id": destination.id if destination else suggest_id(type_id, taken),
            "name": (destination.name or "") if destination else "",
            "enabled": destination.enabled if destination else True,
            "sources": list(destination.sources) if destination else [],
            "settings": saved if destination else new_settings(cls, fields),
            "base_url": str(destination.delivery.get("base_url") or "") if destination else "",
        }
        return {
            "cls": cls,
            "entry": entry_of(cls),
            "type_id": type_id,
            "fields": fields,
            "values": values,
            "saved": saved,
            "all_sources": ws.sources,
            "destination": destination,
            "test_result": None,
        }

    def submitted(
        context: dict[str, Any], form: FormData, saved: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The form's values; with `saved` settings, secrets left empty keep them."""
        raw = _form_values(form)
        return {
            "id": raw.get("id", "").strip(),
            "name": raw.get("name", "").strip(),
            "enabled": raw.get("enabled") == "on",
            "sources": [str(s) for s in form.getlist("sources")],
            "settings": settings_from_form(context["cls"], context["fields"], raw, saved),
            "base_url": raw.get("delivery.base_url", ""),
            "raw": raw,
        }

    def type_problem(type_id: str) -> str | None:
        """Why there is no form for this type (unknown, or one of Segment's that cannot run)."""
        if type_id in known_types():
            return None
        try:
            load(type_id)
        except SluiceError as exc:
            return str(exc)
        return None

    async def new_page(request: Request) -> Response:
        type_id = request.path_params["type_id"]
        problem = await site.run(type_problem, type_id)
        if problem is not None:
            return missing(request, f"type {type_id}: {problem}")
        context = await site.run(form_context, type_id, None)
        return site.render(request, "destination_new.html", error="", error_field="", **context)

    async def create(request: Request) -> Response:
        type_id = request.path_params["type_id"]
        problem = await site.run(type_problem, type_id)
        if problem is not None:
            return missing(request, f"type {type_id}: {problem}")
        form = await request.form()
        context = await site.run(form_context, type_id, None)
        raw = _form_values(form)
        try:
            values = submitted(context, form)
        except FormError as exc:
            context["values"] = {**context["values"], "raw": raw}
            return refused(request, "destination_new.html", context, str(exc), exc.field)
        context["values"] = values

        def change(ws: Workspace) -> None:
            ws.destinations.append(
                Destination(
                    id=values["id"],
                    type=type_id,
                    name=values["name"] or None,
                    enabled=values["enabled"],
                    sources=values["sources"],
                    settings=values["settings"],
                    delivery=with_base_url({}, values["base_url"]) if context["entry"] else {},
                )
            )

        try:
            await site.run(apply_change, site.store, change)
        except WorkspaceError as exc:
            return refused(request, "destination_new.html", context, exc)
        return redirect(
            f"/destinations/{values['id']}",
            "Destination added: it receives events from now on.",
        )

    def load_destination(destination_id: str) -> tuple[Destination, dict[str, Any]]:
        ws = export_workspace(site.store)
        _, destination = find_destination(ws, destination_id)
        stats = destination_stats(site.store).get(destination_id, {})
        return destination, stats

    async def page(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        try:
            destination, stats = await site.run(load_destination, destination_id)
        except NotFound:
            return missing(request, destination_id)
        if destination.mode == "device":
            view = await site.run(device_context, destination, site.settings.data_dir)
            return site.render(request, "device_destination.html", **view)
        try:
            context = await site.run(form_context, destination.type, destination)
        except SluiceError as exc:
            return site.render(request, "not_found.html", status=404, what=str(exc))
        context.update(stats=stats, tab="settings", error="", error_field="")
        return site.render(request, "destination.html", **context)

    async def update(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        try:
            destination, stats = await site.run(load_destination, destination_id)
            context = await site.run(form_context, destination.type, destination)
        except (NotFound, SluiceError):
            return missing(request, destination_id)
        form = await request.form()
        context.update(stats=stats, tab="settings")
        try:
            values = submitted(context, form, dict(destination.settings))
        except FormError as exc:
            context["values"] = {**context["values"], "raw": _form_values(form)}
            return refused(request, "destination.html", context, str(exc), exc.field)
        values["id"] = destination_id
        context["values"] = values

        def change(ws: Workspace) -> None:
            _, target = find_destination(ws, destination_id)
            target.name = values["name"] or None
            target.enabled = values["enabled"]
            target.sources = values["sources"]
            target.settings = values["settings"]
            if context["entry"] is not None:
                target.delivery = with_base_url(target.delivery, values["base_url"])

        try:
            await site.run(apply_change, site.store, change)
        except WorkspaceError as exc:
            return refused(request, "destination.html", context, exc)
        return redirect(f"/destinations/{destination_id}", "Settings saved.")

    async def test(request: Request) -> Response:
        """Run the definition's `testAuthentication` with the saved settings; show the page
        with the result."""
        destination_id = request.path_params["destination_id"]
        try:
            destination, stats = await site.run(load_destination, destination_id)
            context = await site.run(form_context, destination.type, destination)
        except (NotFound, SluiceError):
            return missing(request, destination_id)
        result = await check_connection(msgspec.to_builtins(destination), site.store)
        context.update(stats=stats, tab="settings", error="", error_field="", test_result=result)
        return site.render(request, "destination.html", **context)

    async def toggle(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        enabled = (await request.form()).get("enabled") == "true"

        def change(ws: Workspace) -> None:
            find_destination(ws, destination_id)[1].enabled = enabled

        flash = (
            "Enabled." if enabled else "Disabled: nothing is sent to it until it is enabled again."
        )
        return await simple_change(request, destination_id, change, flash)

    async def delete(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]

        def change(ws: Workspace) -> None:
            index, _ = find_destination(ws, destination_id)
            del ws.destinations[index]

        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return missing(request, destination_id)
        except WorkspaceError as exc:
            return redirect(f"/destinations/{destination_id}", f"Not deleted: {exc}")
        return redirect("/destinations", f"Destination {destination_id} deleted.")

    async def simple_change(
        request: Request, destination_id: str, change: Any, flash: str
    ) -> Response:
        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return missing(request, destination_id)
        except WorkspaceError as exc:
            return redirect(f"/destinations/{destination_id}", f"Not saved: {exc}")
        return redirect(f"/destinations/{destination_id}", flash)

    def refused(
        request: Request,
        template: str,
        context: dict[str, Any],
        error: WorkspaceError | str,
        setting: str = "",
    ) -> Response:
        """The form again, with the values as submitted and what is wrong (and where)."""
        if isinstance(error, WorkspaceError):
            text, field = message(error, "destinations"), error_field(error)
        else:
            text, field = error, f"settings.{setting}"
        return site.render(request, template, status=400, error=text, error_field=field, **context)

    def missing(request: Request, what: str) -> Response:
        return site.render(request, "not_found.html", status=404, what=f"destination {what}")

    return [
        Route("/destinations", list_page, methods=["GET"]),
        Route("/catalog/{type_id}", new_page, methods=["GET"]),
        Route("/catalog/{type_id}", create, methods=["POST"]),
        Route("/destinations/{destination_id}", page, methods=["GET"]),
        Route("/destinations/{destination_id}", update, methods=["POST"]),
        Route("/destinations/{destination_id}/test", test, methods=["POST"]),
        Route("/destinations/{destination_id}/enabled", toggle, methods=["POST"]),
        Route("/destinations/{destination_id}/delete", delete, methods=["POST"]),
    ]


def error_field(error: WorkspaceError) -> str:
    """The form field an error is about: its path, or for a settings check that names its field
    in the message (`urls: ... is not an http(s) URL`), that field."""
    path = local_path(error, "destinations")
    named = re.match(r"([a-z_][a-z0-9_]*): ", error.message)
    if path == "settings" and named:
        return f"settings.{named.group(1)}"
    return path
