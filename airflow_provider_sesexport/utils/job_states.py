"""
What each SES export ``JobStatus`` means, as data: the status sets and the outcome each status leads to.

:mod:`airflow_provider_sesexport.utils.export_job` applies them to GetExportJob responses; the
``export_job_complete`` waiter (``waiters/sesv2.json``) lists the same states (a unit test keeps the two equal).
"""

from __future__ import annotations

#: ``JobStatus`` values of a job that is still running.
INTERMEDIATE_STATES: frozenset[str] = frozenset({"CREATED", "PROCESSING"})
#: ``JobStatus`` values of a job that finished with its file.
SUCCESS_STATES: frozenset[str] = frozenset({"COMPLETED"})
#: ``JobStatus`` values of a job that ended without a file.
FAILURE_STATES: frozenset[str] = frozenset({"FAILED", "CANCELLED"})
TERMINAL_STATES: frozenset[str] = SUCCESS_STATES | FAILURE_STATES

#: Outcomes: the job is still running (or has a status this provider does not know), or how it ended.
RUNNING, SUCCESS, FAILED, CANCELLED = "running", "success", "failed", "cancelled"
#: Outcomes of a job that ended.
FINISHED_OUTCOMES: tuple[str, ...] = (SUCCESS, FAILED, CANCELLED)
#: The outcome each known ``JobStatus`` leads to; any other status counts as running, with a warning.
OUTCOME_OF_STATUS: dict[str, str] = {
    **dict.fromkeys(INTERMEDIATE_STATES, RUNNING),
    "COMPLETED": SUCCESS,
    "FAILED": FAILED,
    "CANCELLED": CANCELLED,
}


def is_terminal(status: str | None) -> bool:
    """Whether ``status`` is final (COMPLETED, FAILED or CANCELLED)."""
    return status in TERMINAL_STATES
