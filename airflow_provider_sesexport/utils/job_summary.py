"""One place for turning a GetExportJob response into the plain-JSON job summary tasks share via XCom."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sesexport.utils.job_states import SUCCESS_STATES
from airflow_provider_sesexport.utils.redaction import redact_text

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
