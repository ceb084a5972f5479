"""Workspace as code: a YAML file that `sluice apply` makes the store match, and `sluice export`
writes back.

The document model lives in `model` (its sections and rules in the `model_*` modules), reading and
writing files in `files`, and the reconciliation with the store in `sync`.
"""

from __future__ import annotations

from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import dump_workspace, load_workspace_file, parse_workspace
from sluice.workspace.model import Destination, Source, TrackingPlan, Warehouse, Workspace
from sluice.workspace.sync import (
    ApplyReport,
    apply_workspace,
    ensure_default_source,
    export_workspace,
    generate_write_key,
)

__all__ = [
    "ApplyReport",
    "Destination",
    "Source",
    "TrackingPlan",
    "Warehouse",
    "Workspace",
    "WorkspaceError",
    "apply_workspace",
    "dump_workspace",
    "ensure_default_source",
    "export_workspace",
    "generate_write_key",
    "load_workspace_file",
    "parse_workspace",
]
