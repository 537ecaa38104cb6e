"""
One place for what a GetExportJob response means.

:func:`interpret_export_job` turns a response into an :class:`ExportJobOutcome` (a pure function);
:func:`raise_for_outcome` raises the typed error a failed or cancelled job deserves; and
:func:`observe_export_job` does both for one poll of a wait, with the poll's log line. The sensor,
the hook's waiter, the result and copy operators and the trigger's poller all use them, and the
trigger's events carry the outcome itself (:meth:`ExportJobOutcome.to_event`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_sesexport.exceptions import SesExportJobCancelledError, SesExportJobFailedError
from airflow_provider_sesexport.utils.job_states import CANCELLED, FAILED, OUTCOME_OF_STATUS, RUNNING, SUCCESS
from airflow_provider_sesexport.utils.job_summary import (
    failure_of,
    s3_url_of,
    seconds_since_creation,
    summarize_export_job,
    utcnow,
)
from airflow_provider_sesexport.utils.redaction import mask_url, redact_text, redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportJobOutcome:
    """
    What one GetExportJob response says about a job: plain data, no URL in it.

    :param job_id: the id of the job the caller asked about.
    :param status: ``running``, ``success``, ``failed`` or ``cancelled``.
    :param job_status: the job's ``JobStatus`` as SES returned it.
    :param summary: the job summary (see :func:`~airflow_provider_sesexport.utils.job_summary.summarize_export_job`).
    :param error_message: AWS's ``FailureInfo.ErrorMessage``, URLs redacted.
    :param failed_records_url: ``FailureInfo.FailedRecordsS3Url``, redacted.
    :param warning: set when SES returned a status this provider does not know (treated as running).
    :param elapsed_seconds: seconds since the job was created, when the response says.
    """

    job_id: str
    status: str
    job_status: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    failed_records_url: str | None = None
    warning: str | None = None
    elapsed_seconds: float | None = None

    @property
    def finished(self) -> bool:
        """Whether the job ended (COMPLETED, FAILED or CANCELLED)."""
        return self.status != RUNNING

    @property
    def succeeded(self) -> bool:
        """Whether the job is COMPLETED."""
        return self.status == SUCCESS

    def poll_line(self) -> str:
        """The one log line a poll of this job writes."""
        elapsed = f"{self.elapsed_seconds:.0f}s" if self.elapsed_seconds is not None else "unknown time"
        return f"SES export job {self.job_id}: status {self.job_status}, {elapsed} since creation"

    def to_event(self) -> dict[str, Any]:
        """The trigger event for a finished job (plain JSON): its outcome as ``status``."""
        return {
            "status": self.status,
            "job_id": self.job_id,
            "job_status": self.job_status,
            "summary": self.summary,
            "message": self.error_message,
            "failed_records_url": self.failed_records_url,
        }

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ExportJobOutcome:
        """
        The outcome a trigger event carries (the inverse of :meth:`to_event`).

        :param event: an event whose ``status`` is one of
        :data:`~airflow_provider_sesexport.utils.job_states.FINISHED_OUTCOMES`.
        """
        summary = event.get("summary")
        return cls(
            job_id=str(event.get("job_id")),
            status=str(event["status"]),
            job_status=event.get("job_status"),
            summary=dict(summary) if isinstance(summary, Mapping) else {},
            error_message=event.get("message"),
            failed_records_url=event.get("failed_records_url"),
        )


def interpret_export_job(
    job_id: str, job: Mapping[str, Any], retrieved_at: dt.datetime | None = None
) -> ExportJobOutcome:
    """
    Turn a GetExportJob response into its outcome (every reader of a job comes here: sensor, operators, hook, the
    triggerer's poller). It logs nothing, raises nothing and registers nothing with the secrets masker: a task
    process does that in :func:`observe_export_job`; the long-lived triggerer, whose masker would grow with every
    job it ever saw, only when botocore logs response bodies (``hooks.ses_export.mask_answer_urls``).

    A status this provider does not know (a future SES addition) counts as still running, with a warning.

    :param job_id: the job id the caller asked about (used when the response lacks ``JobId``).
    :param job: the GetExportJob response (members may be missing).
    :param retrieved_at: when GetExportJob returned it; defaults to now.
    """
    retrieved_at = retrieved_at or utcnow()
    summary = summarize_export_job(job, retrieved_at)
    summary["job_id"] = summary["job_id"] or job_id
    job_status = summary["job_status"]
    status = OUTCOME_OF_STATUS.get(job_status or "", RUNNING)
    warning = None
    if job_status not in OUTCOME_OF_STATUS:
        warning = (
            f"SES export job {job_id} has status {job_status!r}, which this provider does not know; "
            "treating it as still running."
        )
    error_message, failed_records_url = failure_of(job)
    return ExportJobOutcome(
        job_id=job_id,
        status=status,
        job_status=job_status,
        summary=summary,
        # AWS's text may quote a pre-signed URL; the outcome ends up in task logs, events and the UI
        error_message=redact_text(error_message) if error_message else None,
        failed_records_url=redact_url(failed_records_url),
        warning=warning,
        elapsed_seconds=seconds_since_creation(job, retrieved_at),
    )


def raise_for_outcome(outcome: ExportJobOutcome) -> None:
    """
    Raise :class:`~airflow_provider_sesexport.exceptions.SesExportJobFailedError` for a FAILED job and
    :class:`~airflow_provider_sesexport.exceptions.SesExportJobCancelledError` for a CANCELLED one, with
    AWS's message; return for any other outcome.

    :param outcome: the outcome.
    """
    if outcome.status == FAILED:
        error: type[SesExportJobFailedError | SesExportJobCancelledError] = SesExportJobFailedError
    elif outcome.status == CANCELLED:
        error = SesExportJobCancelledError
    else:
        return
    job_status = outcome.job_status or outcome.status
    raise error(outcome.job_id, job_status, outcome.error_message, outcome.failed_records_url)


def observe_export_job(
    job_id: str,
    job: Mapping[str, Any],
    logger: logging.Logger | logging.LoggerAdapter | Any | None = None,
    retrieved_at: dt.datetime | None = None,
) -> ExportJobOutcome:
    """
    One poll of a wait: interpret the job (its pre-signed URLs registered with the secrets masker), log the poll
    line (and the warning for an unknown status), raise for FAILED / CANCELLED, and return the outcome.

    :param job_id: the job id the caller asked about.
    :param job: the GetExportJob response.
    :param logger: where the poll line goes.
    :param retrieved_at: when GetExportJob returned it; defaults to now.
    """
    mask_url(s3_url_of(job))
    mask_url(failure_of(job)[1])
    outcome = interpret_export_job(job_id, job, retrieved_at)
    logger = logger or log
    logger.info("%s", outcome.poll_line())  # one line per poll, the same in every mode
    if outcome.warning:
        logger.warning("%s", outcome.warning)
    raise_for_outcome(outcome)
    return outcome
