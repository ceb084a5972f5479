"""The Privacy page: regulations (Segment's suppression and deletion requests) and suppressions.

The list and a regulation's page show the records the admin API returns (`privacy/records.py`),
so they never carry subject ids: the API does not return them, and a finished regulation has
forgotten them. The form builds the API's request and calls the same `create_regulation`; a
type that deletes data asks for a confirmation first (a deletion cannot be undone), after the
request was checked, so a refusal names its field before anything is asked. Suppressions are
SHA-256 hashes of user ids (`privacy/suppression.py`); "check an id" hashes what is typed the
same way and answers by a POST, so the id is in no URL, history or access log.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.privacy.errors import RegulationInvalid, RegulationNotFound
from sluice.privacy.records import read_regulation, regulation_record, suppression_record
from sluice.privacy.regulation import (
    REGULATION_TYPES,
    STATUSES,
    SUBJECT_TYPES,
    RegulationRequest,
    check_scope,
    create_regulation,
    deletes,
)
from sluice.privacy.suppression import suppression_key
from sluice.ui.site import Site, redirect
from sluice.workspace.sync import export_workspace

LISTED = 200  # regulations and suppressions shown (newest first)
MAX_CHECKED_ID = 1_000
TYPE_HELP = {
    "SUPPRESS_ONLY": "stop collecting the user's new events",
    "SUPPRESS_WITH_DELETE": "stop collecting, delete stored data and ask destinations to delete",
    "SUPPRESS_WITH_DELETE_INTERNAL": "stop collecting and delete Sluice's stored data only",
    "DELETE_ONLY": "delete stored data and ask destinations to delete (collecting goes on)",
    "DELETE_INTERNAL": "delete Sluice's stored data only (collecting goes on)",
    "DELETE_ARCHIVE_ONLY": "delete from one source's archive only (source-scoped)",
    "UNSUPPRESS": "collect the user's events again",
}
# Form fields are named as the API's, so a RegulationInvalid's field names the input.
FIELDS = ("regulationType", "subjectType", "subjectIds", "sourceId")


def subject_ids(text: str) -> list[str]:
    """One id a line; blank lines are dropped and each id is trimmed of surrounding spaces."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def request_of(form: dict[str, str]) -> RegulationRequest:
    return RegulationRequest(
        regulation_type=form.get("regulationType", ""),
        subject_type=form.get("subjectType", ""),
        subject_ids=subject_ids(form.get("subjectIds", "")),
    )


def error_field(field: str) -> str:
    """The form field an API field names (`subjectIds[3]` is the ids box)."""
    return field.split("[", 1)[0]


def routes(site: Site) -> list[Route]:
    def load_list(status: str | None) -> dict[str, Any]:
        store = site.store
        found = store.regulations(status=status, limit=LISTED)
        return {
            "regulations": [regulation_record(r) for r in found],
            "suppressions": [suppression_record(*s) for s in store.suppressions(LISTED)],
            "suppressed": len(store.suppressed_keys()),
        }

    async def list_page(request: Request, status_code: int = 200, **extra: Any) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            return site.render(request, "not_found.html", status=404, what=f"status {status}")
        data = await site.run(load_list, status)
        extra.setdefault("check", None)
        return site.render(request, "privacy.html", status=status_code, only=status,
                           statuses=STATUSES, listed=LISTED, **data, **extra)  # fmt: skip

    async def check(request: Request) -> Response:
        # Hashed exactly as typed, as `sluice suppressions check` and the collector hash it.
        typed = str((await request.form()).get("userId", ""))
        if not typed or len(typed) > MAX_CHECKED_ID:
            answer = {"error": f"Type a user id of 1 to {MAX_CHECKED_ID} characters"}
            return await list_page(request, 400, check=answer)
        key = suppression_key(typed)
        found = await site.run(site.store.suppressed_keys)
        return await list_page(request, check={"key": key, "suppressed": key in found,
                                               "error": ""})  # fmt: skip

    def sources() -> list[str]:
        return [s.id for s in export_workspace(site.store).sources]

    async def form_page(
        request: Request,
        form: dict[str, str] | None = None,
        error: RegulationInvalid | None = None,
        confirming: bool = False,
    ) -> Response:
        form = form or {"regulationType": "SUPPRESS_WITH_DELETE", "subjectType": "USER_ID"}
        return site.render(
            request, "privacy_new.html", status=400 if error else 200, form=form,
            error=error.message if error else "", error_field=error_field(error.field) if error
            else "", confirming=confirming, types=REGULATION_TYPES, type_help=TYPE_HELP,
            subject_types=SUBJECT_TYPES, sources=await site.run(sources),
            count=len(set(subject_ids(form.get("subjectIds", "")))),  # as the API counts
        )  # fmt: skip

    async def create(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items() if k in (*FIELDS, "confirm")}
        source_id = form.get("sourceId") or None
        req = request_of(form)

        def checked() -> None:
            check_scope(req, source_id)
            if source_id is not None and source_id not in sources():
                raise RegulationInvalid(f"No source has id {source_id!r}", "sourceId")

        try:
            await site.run(checked)
            if deletes(req.regulation_type) and form.get("confirm") != "yes":
                return await form_page(request, form, confirming=True)
            row = await site.run(create_regulation, site.store, req, source_id)
        except RegulationInvalid as exc:
            return await form_page(request, form, error=exc)
        flash = f"Regulation {row.id} created: {row.subject_count} id(s), {row.status}."
        return redirect(f"/privacy/regulations/{row.id}", flash)

    async def regulation_page(request: Request) -> Response:
        regulation_id = request.path_params["regulation_id"]
        try:
            record = await site.run(read_regulation, site.store, regulation_id)
        except RegulationNotFound:
            return site.render(request, "not_found.html", status=404,
                               what=f"regulation {regulation_id}")  # fmt: skip
        return site.render(request, "privacy_regulation.html", reg=record,
                           deleting=deletes(record["regulationType"]))  # fmt: skip

    return [
        Route("/privacy", list_page, methods=["GET"]),
        Route("/privacy/check", check, methods=["POST"]),
        Route("/privacy/new", form_page, methods=["GET"]),
        Route("/privacy/new", create, methods=["POST"]),
        Route("/privacy/regulations/{regulation_id}", regulation_page, methods=["GET"]),
    ]
