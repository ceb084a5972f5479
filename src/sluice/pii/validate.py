"""`sluice apply`'s checks of `privacy.pii`: at most 100 custom matchers (Segment's limit), each
regex compiles and a regex matcher is not exact/similar, the sources and destinations the rules
name exist, and every rule does something."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sluice.workspace.errors import WorkspaceError

if TYPE_CHECKING:
    from sluice.workspace.model import Workspace

MAX_MATCHERS = 100


def check_pii(ws: Workspace) -> None:
    pii = ws.privacy.pii if ws.privacy is not None else None
    if pii is None:
        return
    where = "privacy.pii"
    if len(pii.matchers) > MAX_MATCHERS:
        raise WorkspaceError(
            f"{len(pii.matchers)} custom matchers; at most {MAX_MATCHERS}", path=f"{where}.matchers"
        )
    names: dict[str, int] = {}
    for i, m in enumerate(pii.matchers):
        at = f"{where}.matchers[{i}]"
        if m.name in names:
            raise WorkspaceError(
                f"Duplicate matcher name {m.name!r} (also at matchers[{names[m.name]}])",
                path=f"{at}.name",
            )
        names[m.name] = i
        if not m.terms:
            raise WorkspaceError("Give at least one term", path=f"{at}.terms")
        if m.match == "regex":
            for j, term in enumerate(m.terms):
                try:
                    re.compile(term)
                except (re.error, OverflowError, RecursionError) as exc:
                    raise WorkspaceError(
                        f"Invalid regular expression: {exc}", path=f"{at}.terms[{j}]"
                    ) from None
    sources = {s.id for s in ws.sources}
    destinations = {d.id: d for d in ws.destinations}
    for source_id, rule in pii.sources.items():
        path = f"{where}.sources.{source_id}"
        if source_id not in sources:
            raise WorkspaceError(f"Unknown source {source_id!r}", path=path)
        if rule.red is None and rule.yellow is None:
            raise WorkspaceError("The rule does nothing: set red and/or yellow", path=path)
    for dest_id, rule in pii.destinations.items():
        path = f"{where}.destinations.{dest_id}"
        destination = destinations.get(dest_id)
        if destination is None:
            raise WorkspaceError(f"Unknown destination {dest_id!r}", path=path)
        if destination.mode == "device":
            raise WorkspaceError(
                f"Destination {dest_id!r} runs in the page (device mode): Sluice never sees"
                " what it sends, so it cannot block or hash fields for it",
                path=path,
            )
        if rule.red is None and rule.yellow is None:
            raise WorkspaceError("The rule does nothing: set red and/or yellow", path=path)
