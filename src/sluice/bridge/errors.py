"""Errors of the bridge to Segment's destinations.

Tree:
    BridgeError (SluiceError)
    ├── NodeUnavailable          node or npm missing, or too old (names what to install)
    ├── BridgeNotInstalled       `sluice bridge install` has not run in this data dir
    ├── BridgeInstallFailed      npm ci or the catalogue step failed (with npm's last lines)
    ├── UnknownSegmentDestination  a name that resolves to no destination of the package
    └── SidecarDied              the Node process exited, broke the protocol or hit a limit;
                                 the executes in flight did not complete and may be resent
"""

from __future__ import annotations

from sluice.errors import SluiceError


class BridgeError(SluiceError):
    """Base of the bridge's errors."""


class NodeUnavailable(BridgeError):
    """Node.js (or npm) is missing or older than the package needs."""


class BridgeNotInstalled(BridgeError):
    """The data dir has no installed bridge (or no catalogue)."""


class BridgeInstallFailed(BridgeError):
    """Installing the pinned package or writing its catalogue failed."""


class UnknownSegmentDestination(BridgeError, KeyError):
    """A destination name the installed package does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SidecarDied(BridgeError):
    """The sidecar stopped before answering: the step in flight should be sent again."""
