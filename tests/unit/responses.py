"""Model-valid SES v2 responses for unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.leakcheck import plant_url

CREATED = dt.datetime(2026, 11, 1, 6, 0, 0, tzinfo=dt.timezone.utc)
#: Pre-signed URLs with unique secret values planted for the session's leak check (tests/leakcheck.py).
PRESIGNED = plant_url("https://export-bucket.s3.amazonaws.com/exports/job-1/data.csv")
FAILED_RECORDS = plant_url("https://export-bucket.s3.amazonaws.com/exports/job-1/failed.csv")


def job_response(status: str, job_id: str = "job-1", **overrides: Any) -> dict[str, Any]:
    """A GetExportJob response as botocore parses it, valid against the model."""
    response: dict[str, Any] = {
        "JobId": job_id,
        "ExportSourceType": "METRICS_DATA",
        "JobStatus": status,
        "ExportDestination": {"DataFormat": "CSV"},
        "ExportDataSource": {
            "MetricsDataSource": {
                "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
                "Namespace": "VDM",
                "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
                "StartDate": dt.datetime(2026, 10, 31, tzinfo=dt.timezone.utc),
                "EndDate": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
            }
        },
        "CreatedTimestamp": CREATED,
    }
    if status in {"COMPLETED", "FAILED", "CANCELLED"}:
        response["CompletedTimestamp"] = CREATED + dt.timedelta(minutes=3)
    if status == "COMPLETED":
        response["ExportDestination"]["S3Url"] = PRESIGNED
        response["Statistics"] = {"ProcessedRecordsCount": 12, "ExportedRecordsCount": 10}
    if status == "FAILED":
        response["FailureInfo"] = {
            "ErrorMessage": "Access denied to the metrics",
            "FailedRecordsS3Url": FAILED_RECORDS,
        }
    response.update(overrides)
    return response
