"""Sources: the list with their counters, creating one, write keys, and what to paste where.

Rotating a write key adds a new key next to the old one: clients still sending the old key keep
working until it is revoked, which is how a key is changed without losing events.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.analyticsjs.install import state
from sluice.ui.changes import NotFound, apply_change, find_source
from sluice.ui.charts import bars
from sluice.ui.site import Site, redirect
from sluice.ui.snippets import snippets
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Source, Workspace
from sluice.workspace.sync import export_workspace, generate_write_key

COUNTERS = ("received", "stored", "duplicates", "throttled")


def source_counters(counters: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """`{source: {name: value}}` with `rejected` summed over its reasons."""
    result: dict[str, dict[str, int]] = {}
    for (source, name), value in counters.items():
        own = result.setdefault(source, {})
        own[name] = value
        if name.startswith("rejected:"):
            own["rejected"] = own.get("rejected", 0) + value
    return result


def analytics_js_installed(site: Site) -> bool:
    """Whether this server serves analytics.js itself (`sluice analytics-js install` ran)."""
    return state(site.settings.data_dir).version is not None


def routes(site: Site) -> list[Route]:
    def load_list() -> dict[str, Any]:
        ws = export_workspace(site.store)
        counts = source_counters(site.store.counters())
        rows = [(s, counts.get(s.id, {})) for s in ws.sources]
        chart = bars([(s.display_name, c.get("stored", 0), "ok") for s, c in rows], "Events stored")
        return {"rows": rows, "chart": chart if rows else ""}

    async def list_page(request: Request) -> Response:
        data = await site.run(load_list)
        return site.render(request, "sources.html", error="", form={}, **data)

    async def create(request: Request) -> Response:
        form = await request.form()
        source_id = str(form.get("id", "")).strip()
        name = str(form.get("name", "")).strip() or None

        def change(ws: Workspace) -> None:
            ws.sources.append(Source(id=source_id, name=name))

        try:
            await site.run(apply_change, site.store, change)
        except WorkspaceError as exc:
            data = await site.run(load_list)
            message = exc.message if exc.path.endswith(".id") else str(exc)
            fields = {"id": source_id, "name": name or ""}
            return site.render(
                request, "sources.html", status=400, error=message, form=fields, **data
            )
        return redirect(
            f"/sources/{source_id}", "Source created. Send it events with the lines below."
        )

    def load_source(source_id: str) -> tuple[Source, dict[str, int]]:
        ws = export_workspace(site.store)
        counts = source_counters(site.store.counters())
        return find_source(ws, source_id), counts.get(source_id, {})

    async def source_page(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        try:
            source, counts = await site.run(load_source, source_id)
        except NotFound:
            return site.render(request, "not_found.html", status=404, what=f"source {source_id}")
        base = site.base_url(request)
        keys = source.write_keys
        hook = None
        if source.webhook is not None:  # a webhook source: its URL, not the libraries' snippets
            prefix = "webhook_rejected:"
            hook = {
                "provider": source.webhook.provider,
                "url": f"{base}/v1/hooks/{keys[0]}" if keys else "",
                "secrets": len(source.webhook.secrets),
                "refusals": {
                    k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)
                },
            }
        return site.render(
            request,
            "source.html",
            source=source,
            counts=counts,
            hook=hook,
            snippets=snippets(base, keys[0], self_hosted=analytics_js_installed(site))
            if keys and hook is None
            else None,
            public_url=site.settings.public_url,
        )

    async def changed(request: Request, change: Any, flash: str) -> Response:
        source_id = request.path_params["source_id"]
        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return site.render(request, "not_found.html", status=404, what=f"source {source_id}")
        except WorkspaceError as exc:
            return redirect(f"/sources/{source_id}", f"Not saved: {exc}")
        return redirect(f"/sources/{source_id}", flash)

    async def rotate(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        new_key = generate_write_key()

        def change(ws: Workspace) -> None:
            source = find_source(ws, source_id)
            source.write_keys = [*source.write_keys, new_key]

        return await changed(
            request,
            change,
            "New write key added. Move your clients to it, then revoke the old one.",
        )

    async def revoke(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        key = str((await request.form()).get("key", ""))

        def change(ws: Workspace) -> None:
            source = find_source(ws, source_id)
            if key not in source.write_keys:
                raise WorkspaceError("this source has no such key")
            if len(source.write_keys) == 1:
                raise WorkspaceError("a source keeps at least one write key: rotate first")
            source.write_keys = [k for k in source.write_keys if k != key]

        return await changed(request, change, "Write key revoked: it is refused from now on.")

    async def update(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        form = await request.form()
        name = str(form.get("name", "")).strip() or None
        enabled = form.get("enabled") == "on"

        def change(ws: Workspace) -> None:
            source = find_source(ws, source_id)
            source.name = None if name == source.id else name
            source.enabled = enabled

        return await changed(request, change, "Source saved.")

    async def delete(request: Request) -> Response:
        source_id = request.path_params["source_id"]

        def change(ws: Workspace) -> None:
            ws.sources.remove(find_source(ws, source_id))

        try:
            await site.run(apply_change, site.store, change)
        except NotFound:
            return site.render(request, "not_found.html", status=404, what=f"source {source_id}")
        except WorkspaceError as exc:
            return redirect(f"/sources/{source_id}", f"Not deleted: {exc}")
        return redirect("/sources", f"Source {source_id} deleted.")

    return [
        Route("/sources", list_page, methods=["GET"]),
        Route("/sources", create, methods=["POST"]),
        Route("/sources/{source_id}", source_page, methods=["GET"]),
        Route("/sources/{source_id}", update, methods=["POST"]),
        Route("/sources/{source_id}/keys", rotate, methods=["POST"]),
        Route("/sources/{source_id}/keys/revoke", revoke, methods=["POST"]),
        Route("/sources/{source_id}/delete", delete, methods=["POST"]),
    ]
