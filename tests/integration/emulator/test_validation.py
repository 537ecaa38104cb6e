"""Every bad-input rule → BadRequestException (400) over real boto3, with a message naming the field."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config

from ses_export_emulator import SesExportEmulator

from .helpers import END, START, http, insights_source, metrics_source

pytestmark = pytest.mark.integration


def _metrics(**changes: Any) -> dict[str, Any]:
    source = metrics_source()
    source["MetricsDataSource"].update(changes)
    return source


def _insights(**changes: Any) -> dict[str, Any]:
    source = insights_source()
    source["MessageInsightsDataSource"].update(changes)
    return source


CSV = {"DataFormat": "CSV"}
BAD_CREATES = {
    "s3url-in-request": (
        metrics_source(),
        {"DataFormat": "CSV", "S3Url": "s3://bucket/key"},
        "Providing a custom S3 URL is not supported",
    ),
    "both-sources": ({**metrics_source(), **insights_source()}, CSV, "One data source must be provided"),
    "neither-source": ({}, CSV, "One data source must be provided"),
    "four-dimensions": (
        _metrics(Dimensions={"ISP": ["a"], "EMAIL_IDENTITY": ["b"], "CONFIGURATION_SET": ["c"], "TENANT_NAME": ["d"]}),
        CSV,
        "Dimensions",
    ),
    "max-results-too-big": (_insights(MaxResults=10001), CSV, "MaxResults"),
    "max-results-zero": (_insights(MaxResults=0), CSV, "MaxResults"),
    "metrics-end-before-start": (_metrics(StartDate=END, EndDate=START), CSV, "EndDate"),
    "insights-end-before-start": (_insights(StartDate=END, EndDate=START - timedelta(days=1)), CSV, "EndDate"),
    "bad-dimension-key": (_metrics(Dimensions={"COUNTRY": ["x"]}), CSV, "Dimensions"),
    "bad-metric-name": (_metrics(Metrics=[{"Name": "SPAM", "Aggregation": "VOLUME"}]), CSV, "Metrics[0].Name"),
    "bad-aggregation": (_metrics(Metrics=[{"Name": "SEND", "Aggregation": "SUM"}]), CSV, "Aggregation"),
    "bad-namespace": (_metrics(Namespace="CLOUDWATCH"), CSV, "Namespace"),
    "too-many-metrics": (_metrics(Metrics=[{"Name": "SEND", "Aggregation": "VOLUME"}] * 11), CSV, "Metrics"),
    "empty-dimension-values": (_metrics(Dimensions={"ISP": []}), CSV, "ISP"),
    "too-many-isp-filters": (_insights(Include={"Isp": ["a", "b", "c", "d", "e", "f"]}), CSV, "Include.Isp"),
    "bad-data-format": (metrics_source(), {"DataFormat": "PARQUET"}, "Value at 'exportDestination.dataFormat'"),
    "missing-data-format": (metrics_source(), {}, "Value at 'exportDestination.dataFormat'"),
}


@pytest.fixture
def strict_client(emu: SesExportEmulator) -> Any:
    """A client that does not validate client-side, so bad input reaches the emulator."""
    return emu.client(config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False))


@pytest.mark.parametrize(("source", "destination", "field"), BAD_CREATES.values(), ids=list(BAD_CREATES))
def test_bad_create_requests(strict_client: Any, source: Any, destination: Any, field: str) -> None:
    with pytest.raises(strict_client.exceptions.BadRequestException) as info:
        strict_client.create_export_job(ExportDataSource=copy.deepcopy(source), ExportDestination=destination)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "BadRequestException"
    assert field in error["Error"]["Message"]


@pytest.mark.parametrize(
    "source",
    [
        _metrics(StartDate=START, EndDate=START),
        _insights(StartDate=END, EndDate=END),
        _metrics(StartDate=END, EndDate=START),
    ],
    ids=["metrics-equal", "insights-equal", "metrics-reversed"],
)
def test_start_not_before_end_is_invalid_date_range(strict_client: Any, source: dict[str, Any]) -> None:
    """Real SES answers 400 "Invalid date range" unless StartDate is strictly before EndDate."""
    with pytest.raises(strict_client.exceptions.BadRequestException) as info:
        strict_client.create_export_job(ExportDataSource=source, ExportDestination=CSV)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"].startswith("Invalid date range")
    assert "EndDate" in error["Error"]["Message"]


def test_missing_required_member_names_it(strict_client: Any) -> None:
    source = metrics_source()
    del source["MetricsDataSource"]["Metrics"]
    with pytest.raises(strict_client.exceptions.BadRequestException, match="Metrics"):
        strict_client.create_export_job(ExportDataSource=source, ExportDestination=CSV)


def test_bad_requests_are_not_rate_limited_and_not_counted_as_jobs(emu: SesExportEmulator, strict_client: Any) -> None:
    for _ in range(3):
        with pytest.raises(strict_client.exceptions.BadRequestException):
            strict_client.create_export_job(ExportDataSource={}, ExportDestination=CSV)
    stats = emu.stats()
    assert stats["jobs_created"] == 0
    assert stats["operations"]["CreateExportJob"]["client_errors"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"JobStatus": "DONE"}, "JobStatus"),
        ({"ExportSourceType": "LOGS"}, "ExportSourceType"),
        ({"PageSize": 1000}, "PageSize"),
        ({"Bogus": 1}, "Bogus"),
        ({"PageSize": "ten"}, "PageSize"),
    ],
)
def test_bad_list_requests(emu: SesExportEmulator, strict_client: Any, body: dict[str, Any], field: str) -> None:
    status, headers, payload = http("POST", f"{emu.endpoint_url}/v2/email/list-export-jobs", body)
    assert status == 400 and headers["x-amzn-ErrorType"] == "BadRequestException"
    assert field.encode() in payload
    if "Bogus" not in body:
        with pytest.raises(strict_client.exceptions.BadRequestException, match=field):
            strict_client.list_export_jobs(**body)


def test_invalid_json_and_timestamps_as_iso_strings(emu: SesExportEmulator) -> None:
    status, _, payload = http("POST", f"{emu.endpoint_url}/v2/email/export-jobs")
    assert status == 400 and b"Value at 'exportDestination'" in payload
    body = {
        "ExportDataSource": {
            "MessageInsightsDataSource": {"StartDate": "2024-01-01T00:00:00Z", "EndDate": "2024-01-02T00:00:00Z"}
        },
        "ExportDestination": {"DataFormat": "CSV"},
    }
    status, _, payload = http("POST", f"{emu.endpoint_url}/v2/email/export-jobs", body)
    assert status == 200 and b"JobId" in payload
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{emu.endpoint_url}/v2/email/export-jobs",
        data=b"{not json",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and b"not valid JSON" in info.value.read()
