"""Sluice: a self-hosted customer data platform that speaks Segment's Tracking API.

The version is the installed distribution's, which setuptools takes from pyproject.toml's
`version`: one place to change it, and `sluice --version`, the UI's footer and pip all agree.
A checkout run without being installed (`PYTHONPATH=src`) has no metadata and says so.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sluice")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
