"""Model-valid SES v2 responses for unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

CREATED = dt.datetime(2026, 11, 1, 6, 0, 0, tzinfo=dt.timezone.utc)
PRESIGNED = (
    "https://export-bucket.s3.amazonaws.com/exports/job-1/data.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20261101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261101T063000Z"
    "&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef"
)
FAILED_RECORDS = (
    "https://export-bucket.s3.amazonaws.com/exports/job-1/failed.csv?X-Amz-Expires=300"
    "&X-Amz-Signature=fedcba9876543210&X-Amz-Credential=AKIAEXAMPLE"
)


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
