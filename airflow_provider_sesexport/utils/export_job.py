"""
What an SES export job's status means, in one place: the ``JobStatus`` values and the outcome each leads to,
the plain-JSON job summary tasks share via XCom, and the reading of a GetExportJob response.

:func:`interpret_export_job` turns a response into an :class:`ExportJobOutcome` (a pure function);
:func:`raise_for_outcome` raises the typed error a failed or cancelled job deserves; and
:func:`observe_export_job` does both for one poll of a wait, with the poll's log line. The sensor,
the hook's waiter, the result and copy operators and the trigger's poller all use them, and the
trigger's events carry the outcome itself (:meth:`ExportJobOutcome.to_event`).

This module imports no hook, operator or trigger: the hook keeps ``SesExportJobHook.INTERMEDIATE_STATES`` and
friends as references to the sets here, and the ``export_job_complete`` waiter (``waiters/sesv2.json``) lists the
same states (a unit test keeps the two equal).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sesexport.exceptions import SesExportJobCancelledError, SesExportJobFailedError
from airflow_provider_sesexport.utils.redaction import mask_url, redact_text, redact_url

# Internal: the public names are re-exported by job_states and job_summary.
__all__ = []

log: logging.Logger = logging.getLogger(__name__)

# -- states ---------------------------------------------------------------------------------------------------------
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


# -- summary ---------------------------------------------------------------------------------------------------------
#: GetExportJob documents that ``S3Url`` expires five minutes after the call returns it.
S3_URL_LIFETIME = dt.timedelta(minutes=5)

STATISTICS_KEYS = ("ProcessedRecordsCount", "ExportedRecordsCount")


def utcnow() -> dt.datetime:
    """Timezone-aware current UTC time."""
    return dt.datetime.now(dt.timezone.utc)


def to_iso(value: Any) -> str | None:
    """Render a timestamp (datetime, or whatever a JSON round trip left of one) as ISO-8601 UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat()
    return str(value)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def statistics_of(job: Mapping[str, Any]) -> dict[str, int | None]:
    """``Statistics`` with AWS's key names; a count AWS left out is None."""
    stats = job.get("Statistics") or {}
    if not isinstance(stats, Mapping):
        stats = {}
    return {key: _count(stats.get(key)) for key in STATISTICS_KEYS}


def s3_url_of(job: Mapping[str, Any]) -> str | None:
    """The job's ``ExportDestination.S3Url`` (a bearer credential: never log it whole)."""
    destination = job.get("ExportDestination") or {}
    url = destination.get("S3Url") if isinstance(destination, Mapping) else None
    return url if isinstance(url, str) and url else None


def failure_of(job: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(ErrorMessage, FailedRecordsS3Url)`` from ``FailureInfo``."""
    info = job.get("FailureInfo") or {}
    if not isinstance(info, Mapping):
        return None, None
    message, url = info.get("ErrorMessage"), info.get("FailedRecordsS3Url")
    return (message if isinstance(message, str) else None, url if isinstance(url, str) else None)


def url_expires_at(url: str | None, retrieved_at: dt.datetime) -> dt.datetime:
    """
    When a pre-signed URL stops working.

    The URL's own ``X-Amz-Date`` + ``X-Amz-Expires`` wins when both are present; otherwise the
    documented rule applies: five minutes after GetExportJob returned it.
    """
    if url:
        try:
            query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            signed = dt.datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
            signed_expiry = signed + dt.timedelta(seconds=int(query["x-amz-expires"]))
            return min(signed_expiry, retrieved_at + S3_URL_LIFETIME)
        except (KeyError, ValueError):
            pass
    return retrieved_at + S3_URL_LIFETIME


def summarize_export_job(job: Mapping[str, Any], retrieved_at: dt.datetime | None = None) -> dict[str, Any]:
    """
    Build the job summary: small, plain JSON, and never containing a URL.

    :param job: a GetExportJob response (or one with some members missing).
    :param retrieved_at: when GetExportJob returned it; defaults to now.
    """
    retrieved_at = retrieved_at or utcnow()
    status = job.get("JobStatus")
    destination = job.get("ExportDestination") or {}
    error_message, _ = failure_of(job)
    summary: dict[str, Any] = {
        "job_id": job.get("JobId"),
        "job_status": status if isinstance(status, str) else None,
        "export_source_type": job.get("ExportSourceType"),
        "data_format": destination.get("DataFormat") if isinstance(destination, Mapping) else None,
        "created_timestamp": to_iso(job.get("CreatedTimestamp")),
        "completed_timestamp": to_iso(job.get("CompletedTimestamp")),
        "statistics": statistics_of(job),
        # AWS's text, with any pre-signed URL it quotes cut down to its path (the summary goes to XCom)
        "error_message": redact_text(error_message) if error_message else error_message,
    }
    if status in SUCCESS_STATES:
        summary["s3_url_expires_at"] = to_iso(url_expires_at(s3_url_of(job), retrieved_at))
    return summary


def seconds_since_creation(job: Mapping[str, Any], now: dt.datetime | None = None) -> float | None:
    """Seconds since ``CreatedTimestamp``, or None when it is missing."""
    created = job.get("CreatedTimestamp")
    if not isinstance(created, dt.datetime):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return ((now or utcnow()) - created).total_seconds()


# -- outcome ---------------------------------------------------------------------------------------------------------
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

    # A plain class, not a dataclass: generating a dataclass's methods costs a DAG file about a millisecond at import.
    __slots__ = (
        "elapsed_seconds",
        "error_message",
        "failed_records_url",
        "job_id",
        "job_status",
        "status",
        "summary",
        "warning",
    )

    def __init__(
        self,
        job_id: str,
        status: str,
        job_status: str | None,
        summary: dict[str, Any] | None = None,
        error_message: str | None = None,
        failed_records_url: str | None = None,
        warning: str | None = None,
        elapsed_seconds: float | None = None,
    ) -> None:
        self.job_id: str = job_id
        self.status: str = status
        self.job_status: str | None = job_status
        self.summary: dict[str, Any] = {} if summary is None else summary
        self.error_message: str | None = error_message
        self.failed_records_url: str | None = failed_records_url
        self.warning: str | None = warning
        self.elapsed_seconds: float | None = elapsed_seconds

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
    logger: logging.Logger | logging.LoggerAdapter[Any] | Any | None = None,
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
