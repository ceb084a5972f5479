"""Transformations and PII rules: the list, a form to create or edit one transformation, delete,
and the workspace's PII controls (matchers and rules per source and destination) with a form to
set one source's or destination's rule.

Every form becomes a workspace change checked as `sluice apply` checks a file (`changes.py`), so
the page refuses what a file would, with the same message and the field named.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.ui.changes import NotFound, apply_change, local_path, message
from sluice.ui.site import Site, redirect
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Workspace
from sluice.workspace.model_privacy import PiiRule, PiiSettings, Privacy
from sluice.workspace.model_transformations import Transformation
from sluice.workspace.sync import export_workspace

TYPES = (
    ("rename_event", "Rename track event"),
    ("rename_properties", "Rename track properties"),
    ("rename_traits", "Rename identify or group traits"),
    ("set_values", "Set property values"),
    ("casing", "Change a value's case"),
)
CALLS = ("track", "identify", "group")
KIND = "transformations"


def _find(ws: Workspace, transformation_id: str) -> int:
    for index, t in enumerate(ws.transformations):
        if t.id == transformation_id:
            return index
    raise NotFound(f"no transformation {transformation_id!r}")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def from_form(form: dict[str, str], index: int) -> Transformation:
    """The transformation a form describes; WorkspaceError naming the field otherwise."""
    where = f"{KIND}[{index}]"
    data: dict[str, Any] = {
        "id": form.get("id", "").strip(),
        "source": form.get("source", "").strip(),
        "type": form.get("type", ""),
        "call": form.get("call", "track"),
        "enabled": form.get("enabled") == "on",
    }
    for field in ("name", "destination", "event", "new_event_name"):
        value = form.get(field, "").strip()
        if value:
            data[field] = value
    renames = []
    for line in _lines(form.get("renames", "")):
        old, arrow, new = line.partition("->")
        if not arrow:
            raise WorkspaceError(f"Write each rename as old -> new, got {line!r}",
                                 path=f"{where}.renames")  # fmt: skip
        renames.append({"old": old.strip(), "new": new.strip()})
    if renames:
        data["renames"] = renames
    values = []
    for line in _lines(form.get("values", "")):
        paths, equals, raw = line.partition("=")
        if not equals:
            raise WorkspaceError(f"Write each value as path, path = value, got {line!r}",
                                 path=f"{where}.values")  # fmt: skip
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw.strip()  # a bare word is a string
        values.append({"paths": [p.strip() for p in paths.split(",") if p.strip()],
                       "value": value})  # fmt: skip
    if values:
        data["values"] = values
    fql, target = form.get("casing_fql", "").strip(), form.get("casing_property", "").strip()
    if fql or target:
        data["casing"] = {"fql": fql, "property": target}
    try:
        return msgspec.convert(data, Transformation)
    except msgspec.ValidationError as exc:
        text, _, at = str(exc).partition(" - at `$")
        field = at.rstrip("`").lstrip(".")
        raise WorkspaceError(text.replace("`", ""), path=f"{where}.{field}" if field else where
                             ) from None  # fmt: skip


def to_form(t: Transformation) -> dict[str, str]:
    """A stored transformation as the form's fields."""
    return {
        "id": t.id,
        "name": t.name or "",
        "source": t.source,
        "destination": t.destination or "",
        "type": t.type,
        "call": t.call,
        "event": t.event or "",
        "new_event_name": t.new_event_name or "",
        "renames": "\n".join(f"{r.old} -> {r.new}" for r in t.renames),
        "values": "\n".join(f"{', '.join(v.paths)} = {json.dumps(v.value)}" for v in t.values),
        "casing_fql": t.casing.fql if t.casing else "",
        "casing_property": t.casing.property if t.casing else "",
        "enabled": "on" if t.enabled else "",
    }


def summary(t: Transformation) -> str:
    """One line saying what a transformation does."""
    if t.type == "rename_event":
        return f"event → {t.new_event_name}"
    if t.renames:
        return "; ".join(f"{r.old} → {r.new}" for r in t.renames)
    if t.values:
        return "; ".join(f"{', '.join(v.paths)} = {json.dumps(v.value)}" for v in t.values)
    if t.casing:
        return f"{t.casing.property} = {t.casing.fql}"
    return ""


def set_pii_rule(ws: Workspace, form: dict[str, str]) -> str:
    """Set (or clear) one source's or destination's PII rule; returns what was done."""
    kind, _, target = form.get("target", "").partition(":")
    if kind not in ("source", "destination") or not target:
        raise WorkspaceError("Choose a source or a destination", path="privacy.pii")
    red = form.get("red") or None
    yellow = form.get("yellow") or None
    if ws.privacy is None:
        ws.privacy = Privacy()
    if ws.privacy.pii is None:
        ws.privacy.pii = PiiSettings()
    rules = ws.privacy.pii.sources if kind == "source" else ws.privacy.pii.destinations
    if red is None and yellow is None:
        rules.pop(target, None)
        return f"No PII rule for {kind} {target} any more."
    try:
        rules[target] = msgspec.convert({"red": red, "yellow": yellow}, PiiRule)
    except msgspec.ValidationError as exc:
        raise WorkspaceError(str(exc).replace("`", ""), path=f"privacy.pii.{kind}s") from None
    return f"PII rule for {kind} {target} saved."


def routes(site: Site) -> list[Route]:
    def context(ws: Workspace) -> dict[str, Any]:
        return {
            "sources": [s.id for s in ws.sources],
            "destinations": [d.id for d in ws.destinations if d.mode == "cloud"],
            "types": TYPES,
            "calls": CALLS,
        }

    async def list_page(request: Request) -> Response:
        ws = await site.run(export_workspace, site.store)
        pii = ws.privacy.pii if ws.privacy is not None else None
        rows = [(t, dict(TYPES)[t.type], summary(t)) for t in ws.transformations]
        return site.render(request, "transformations.html", rows=rows, pii=pii, **context(ws))

    async def form_page(request: Request) -> Response:
        ws = await site.run(export_workspace, site.store)
        transformation_id = request.path_params.get("transformation_id")
        form = {"enabled": "on", "call": "track"}
        if transformation_id is not None:
            try:
                form = to_form(ws.transformations[_find(ws, transformation_id)])
            except NotFound:
                return missing(request, transformation_id)
        return site.render(request, "transformation.html", form=form, error="",
                           error_field="", editing=transformation_id, **context(ws))  # fmt: skip

    async def save(request: Request) -> Response:
        transformation_id = request.path_params.get("transformation_id")
        form = {k: str(v) for k, v in (await request.form()).items()}
        if transformation_id is not None:
            form["id"] = transformation_id  # the id is not editable

        def change(ws: Workspace) -> None:
            if transformation_id is None:
                ws.transformations.append(from_form(form, len(ws.transformations)))
            else:
                index = _find(ws, transformation_id)
                ws.transformations[index] = from_form(form, index)

        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return missing(request, transformation_id or "")
        except WorkspaceError as exc:
            ws = await site.run(export_workspace, site.store)
            return site.render(
                request, "transformation.html", status=400, form=form,
                editing=transformation_id, error=message(exc, KIND),
                error_field=local_path(exc, KIND), **context(ws),
            )  # fmt: skip
        verb = "saved" if transformation_id else "created"
        return redirect("/transformations", f"Transformation {form['id']} {verb}.")

    async def delete(request: Request) -> Response:
        transformation_id = request.path_params["transformation_id"]

        def change(ws: Workspace) -> None:
            del ws.transformations[_find(ws, transformation_id)]

        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return missing(request, transformation_id)
        except WorkspaceError as exc:
            return redirect("/transformations", f"Not deleted: {exc}")
        return redirect("/transformations", f"Transformation {transformation_id} deleted.")

    async def pii_rule(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        done: list[str] = []

        def change(ws: Workspace) -> None:
            done.append(set_pii_rule(ws, form))

        try:
            await site.run(apply_change, site.store, change)
        except WorkspaceError as exc:
            return redirect("/transformations", f"Not saved: {exc}")
        return redirect("/transformations", done[0])

    def missing(request: Request, what: str) -> Response:
        return site.render(request, "not_found.html", status=404, what=f"transformation {what}")

    return [
        Route("/transformations", list_page, methods=["GET"]),
        Route("/transformations/new", form_page, methods=["GET"]),
        Route("/transformations/new", save, methods=["POST"]),
        Route("/transformations/pii", pii_rule, methods=["POST"]),
        Route("/transformations/{transformation_id}", form_page, methods=["GET"]),
        Route("/transformations/{transformation_id}", save, methods=["POST"]),
        Route("/transformations/{transformation_id}/delete", delete, methods=["POST"]),
    ]
