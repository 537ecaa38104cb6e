"""Evaluate a GetExportJob response the same way in the sensor, the operators and the trigger."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_sesexport.utils.job_states import check_job_outcome
from airflow_provider_sesexport.utils.job_summary import (
    failure_of,
    s3_url_of,
    seconds_since_creation,
    summarize_export_job,
)
from airflow_provider_sesexport.utils.redaction import mask_url


def evaluate_export_job(
    job_id: str,
    job: Mapping[str, Any],
    retrieved_at: dt.datetime | None = None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> tuple[bool, dict[str, Any]]:
    """
    Log one poll line, then decide: ``(True, summary)`` when COMPLETED, ``(False, summary)`` while running.

    Registers the job's pre-signed URLs with the secrets masker first, and raises the typed error
    for FAILED / CANCELLED (see :func:`~airflow_provider_sesexport.utils.job_states.check_job_outcome`).

    :param job_id: the job id the caller asked about (used when the response lacks ``JobId``).
    :param job: the GetExportJob response.
    :param retrieved_at: when GetExportJob returned it.
    :param logger: where the poll line goes.
    """
    error_message, failed_records_url = failure_of(job)
    mask_url(s3_url_of(job))
    mask_url(failed_records_url)
    summary = summarize_export_job(job, retrieved_at)
    summary["job_id"] = summary["job_id"] or job_id
    log = logger or logging.getLogger(__name__)
    elapsed = seconds_since_creation(job, retrieved_at)
    log.info(
        "SES export job %s: status %s, %s since creation",
        summary["job_id"],
        summary["job_status"],
        f"{elapsed:.0f}s" if elapsed is not None else "unknown time",
    )
    done = check_job_outcome(summary["job_id"], summary["job_status"], error_message, failed_records_url, logger=log)
    return done, summary
