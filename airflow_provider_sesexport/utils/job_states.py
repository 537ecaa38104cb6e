"""
What each SES export ``JobStatus`` leads to, as data: the outcome of each status.

The status sets themselves are the hook's (``SesExportJobHook.INTERMEDIATE_STATES`` and friends, defined in
:mod:`airflow_provider_sesexport.hooks.ses_export`, which a DAG file loads anyway) and are re-exported here.
:mod:`airflow_provider_sesexport.utils.export_job` applies them to GetExportJob responses; the
``export_job_complete`` waiter (``waiters/sesv2.json``) lists the same states (a unit test keeps the two equal).
"""

from __future__ import annotations

from airflow_provider_sesexport.hooks.ses_export import FAILURE_STATES, INTERMEDIATE_STATES, SUCCESS_STATES

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
