"""One place for what each SES export ``JobStatus`` means, used by the hook, sensor, operators and trigger."""

from __future__ import annotations

import logging

from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobFailedError,
)
from airflow_provider_sesexport.utils.redaction import redact_text

INTERMEDIATE_STATES: frozenset[str] = frozenset({"CREATED", "PROCESSING"})
SUCCESS_STATES: frozenset[str] = frozenset({"COMPLETED"})
FAILURE_STATES: frozenset[str] = frozenset({"FAILED", "CANCELLED"})
TERMINAL_STATES: frozenset[str] = SUCCESS_STATES | FAILURE_STATES

log = logging.getLogger(__name__)


def is_terminal(status: str | None) -> bool:
    """Whether ``status`` is final (COMPLETED, FAILED or CANCELLED)."""
    return status in TERMINAL_STATES


def check_job_outcome(
    job_id: str,
    status: str | None,
    error_message: str | None = None,
    failed_records_url: str | None = None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> bool:
    """
    Turn a job status into an outcome: True when COMPLETED, False while it is still running.

    FAILED raises :class:`SesExportJobFailedError`, CANCELLED :class:`SesExportJobCancelledError`.
    A status this code does not know (a future SES addition) counts as still running, with a warning.

    :param job_id: the export job's id, for messages.
    :param status: the job's ``JobStatus``.
    :param error_message: ``FailureInfo.ErrorMessage``, if any.
    :param failed_records_url: ``FailureInfo.FailedRecordsS3Url``, if any (shown redacted).
    :param logger: where to warn about an unknown status.
    """
    if status in SUCCESS_STATES:
        return True
    if error_message:  # AWS's text may quote a pre-signed URL; the error ends up in task logs and the UI
        error_message = redact_text(error_message)
    if status == "FAILED":
        raise SesExportJobFailedError(job_id, status, error_message, failed_records_url)
    if status == "CANCELLED":
        raise SesExportJobCancelledError(job_id, status, error_message, failed_records_url)
    if status not in INTERMEDIATE_STATES:
        (logger or log).warning(
            "SES export job %s has status %r, which this provider does not know; treating it as still running.",
            job_id,
            status,
        )
    return False
