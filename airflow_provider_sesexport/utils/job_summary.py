"""Kept so that its import path keeps working: the job summary lives in :mod:`~.utils.export_job`."""

from __future__ import annotations

from airflow_provider_sesexport.utils.export_job import (
    S3_URL_LIFETIME,
    STATISTICS_KEYS,
    failure_of,
    s3_url_of,
    seconds_since_creation,
    statistics_of,
    summarize_export_job,
    to_iso,
    url_expires_at,
    utcnow,
)

__all__ = [
    "S3_URL_LIFETIME",
    "STATISTICS_KEYS",
    "failure_of",
    "s3_url_of",
    "seconds_since_creation",
    "statistics_of",
    "summarize_export_job",
    "to_iso",
    "url_expires_at",
    "utcnow",
]
