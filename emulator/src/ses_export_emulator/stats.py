"""Request counters of one emulator (read and reset via the control API or Python)."""

from __future__ import annotations

from typing import Any

OPERATIONS = ("CreateExportJob", "GetExportJob", "ListExportJobs", "CancelExportJob")
_OP_COUNTERS = ("requests", "succeeded", "throttled", "client_errors", "server_errors", "resets")


class Stats:
    """
    Counters. ``requests`` counts every request an operation received, throttled ones included;
    ``throttled`` (429), ``client_errors`` (other 4xx), ``server_errors`` (5xx), ``resets`` (aborted)
    and ``succeeded`` split it up.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.operations: dict[str, dict[str, int]] = {op: dict.fromkeys(_OP_COUNTERS, 0) for op in OPERATIONS}
        self.jobs_created = 0
        self.downloads: dict[str, int] = dict.fromkeys(("requests", "ok", "denied", "dropped", "bytes"), 0)

    def count(self, operation: str, counter: str) -> None:
        """
        Add one to a counter of an operation.

        :param operation: the operation name.
        :param counter: one of ``requests``, ``succeeded``, ``throttled``, ``client_errors``, ...
        """
        self.operations[operation][counter] += 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot."""
        return {
            "operations": {op: dict(c) for op, c in self.operations.items()},
            "jobs_created": self.jobs_created,
            "downloads": dict(self.downloads),
            "total_requests": sum(c["requests"] for c in self.operations.values()),
            "total_throttled": sum(c["throttled"] for c in self.operations.values()),
        }
