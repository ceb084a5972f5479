"""Segment's Filter Query Language (FQL), compiled to fast predicates over event dicts.

Two dialects share one lexer and parser:

- `compile_filter(expr)`: full FQL, as destination filters and Protocols use it (`"all"` means
  every event).
- `compile_trigger(expr)`: the subset, and looser comparison rules, of Destination Actions
  triggers.

Both raise FqlError (with the position) for an invalid expression and cache compiled results;
the predicates they return never raise. Pure: no I/O, standard library only.
"""

from __future__ import annotations

from sluice.fql.errors import FqlError
from sluice.fql.evaluate import MATCH_ALL, Event, Predicate, compile_filter, path_getter
from sluice.fql.glob import GlobError, compile_glob, glob_match
from sluice.fql.parser import Node, parse
from sluice.fql.subscriptions import compile_trigger

__all__ = [
    "MATCH_ALL",
    "Event",
    "FqlError",
    "GlobError",
    "Node",
    "Predicate",
    "compile_filter",
    "compile_glob",
    "compile_trigger",
    "glob_match",
    "parse",
    "path_getter",
]
