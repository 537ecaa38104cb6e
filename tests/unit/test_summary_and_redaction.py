from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_sesexport.utils.job_summary import summarize_export_job, url_expires_at
from airflow_provider_sesexport.utils.redaction import redact_text, redact_url
from tests.unit.responses import CREATED, PRESIGNED, job_response

RETRIEVED = dt.datetime(2026, 11, 1, 6, 30, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"])
def test_summary_shape(status: str) -> None:
    summary = summarize_export_job(job_response(status), RETRIEVED)
    assert json.loads(json.dumps(summary)) == summary
    expected = {
        "job_id",
        "job_status",
        "export_source_type",
        "data_format",
        "created_timestamp",
        "completed_timestamp",
        "statistics",
        "error_message",
    }
    if status == "COMPLETED":
        expected.add("s3_url_expires_at")
    assert set(summary) == expected
    assert summary["created_timestamp"] == CREATED.isoformat()
    assert ("://" in json.dumps(summary)) is False


def test_summary_of_empty_response() -> None:
    summary = summarize_export_job({}, RETRIEVED)
    assert summary["job_status"] is None and summary["statistics"] == {
        "ProcessedRecordsCount": None,
        "ExportedRecordsCount": None,
    }


def test_expiry_uses_signed_date_when_earlier() -> None:
    # X-Amz-Date 06:30:00 + 300 s
    assert url_expires_at(PRESIGNED, RETRIEVED) == dt.datetime(2026, 11, 1, 6, 35, tzinfo=dt.timezone.utc)


def test_expiry_defaults_to_five_minutes_after_retrieval() -> None:
    assert url_expires_at("s3://bucket/key.csv", RETRIEVED) == RETRIEVED + dt.timedelta(minutes=5)
    assert url_expires_at(None, RETRIEVED) == RETRIEVED + dt.timedelta(minutes=5)


def test_redact_url() -> None:
    redacted = redact_url(PRESIGNED)
    assert redacted == "https://export-bucket.s3.amazonaws.com/exports/job-1/data.csv?<redacted>"
    assert redact_url("s3://bucket/key") == "s3://bucket/key"
    assert redact_url(None) is None


def test_redact_text() -> None:
    text = f"download failed for {PRESIGNED} (403)"
    assert "X-Amz-Signature" not in redact_text(text)
    assert "(403)" in redact_text(text)
