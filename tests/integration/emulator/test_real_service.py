"""
Facts 1-11 and 14 of the real-SES issue: what real SES answers, checked over HTTP with plain boto3.

Every test talks to the emulator with default options (what real SES does) through an unmodified
boto3 ``sesv2`` client, or with raw HTTP where boto3 refuses the request client-side; the tests of
an option that restores the model's behaviour say so in their names.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ses_export_emulator import SesExportEmulator

from .helpers import MODEL, check_output, download, http, wait_status
from .test_entry_points import _start_cli

pytestmark = pytest.mark.integration

DAY = datetime(2026, 9, 22, tzinfo=timezone.utc)
CSV = {"DataFormat": "CSV"}
METRICS = [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}]
Factory = Callable[..., SesExportEmulator]


def plain_boto3(emu: SesExportEmulator, **config: Any) -> Any:
    """An unmodified boto3 sesv2 client for ``emu`` (no retries; ``config``: more botocore Config)."""
    return boto3.client(
        "sesv2",
        endpoint_url=emu.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config),
    )


def metrics(start: datetime = DAY, end: datetime = DAY + timedelta(days=1), **dimensions: list[str]) -> dict[str, Any]:
    """A metrics ``ExportDataSource``."""
    return {
        "MetricsDataSource": {
            "Dimensions": dimensions or {"ISP": ["Gmail", "Yahoo"]},
            "Namespace": "VDM",
            "Metrics": METRICS,
            "StartDate": start,
            "EndDate": end,
        }
    }


def insights(start: datetime = DAY, end: datetime = DAY + timedelta(days=1), **extra: Any) -> dict[str, Any]:
    """A Message Insights ``ExportDataSource``."""
    return {"MessageInsightsDataSource": {"StartDate": start, "EndDate": end, **extra}}


def refused(client: Any, source: dict[str, Any], destination: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateExportJob that must fail with 400; returns the botocore error response."""
    with pytest.raises(client.exceptions.ClientError) as info:
        client.create_export_job(ExportDataSource=source, ExportDestination=destination or CSV)
    response: dict[str, Any] = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response


def bad_request(client: Any, source: dict[str, Any], destination: dict[str, Any] | None = None) -> str:
    """CreateExportJob that must fail with 400 BadRequestException; returns the message."""
    error = refused(client, source, destination)["Error"]
    assert error["Code"] == "BadRequestException"
    return str(error["Message"])


def raw_create(emu: SesExportEmulator, body: dict[str, Any]) -> tuple[int, str, str]:
    """CreateExportJob as raw rest-json; returns (status, x-amzn-ErrorType, message)."""
    status, headers, payload = http("POST", f"{emu.endpoint_url}/v2/email/export-jobs", body)
    return status, headers.get("x-amzn-ErrorType", ""), json.loads(payload).get("message", "")


def completed(client: Any, source: dict[str, Any], data_format: str = "CSV") -> dict[str, Any]:
    """Create a job and wait until it COMPLETED; returns its GetExportJob answer."""
    job_id = client.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": data_format})["JobId"]
    job = wait_status(client, job_id)
    assert job["JobStatus"] == "COMPLETED"
    check_output("GetExportJob", job)
    return job


@pytest.fixture
def client(emu: SesExportEmulator) -> Any:
    """A plain boto3 client for ``emu``."""
    return plain_boto3(emu)


# -- fact 1 ------------------------------------------------------------------------------------
def test_fact01_custom_s3_url_is_refused(emu: SesExportEmulator, client: Any) -> None:
    destination = {"DataFormat": "CSV", "S3Url": "s3://my-bucket/exports/"}
    assert bad_request(client, metrics(), destination) == "Providing a custom S3 URL is not supported"
    assert bad_request(client, insights(), destination) == "Providing a custom S3 URL is not supported"
    assert client.list_export_jobs()["ExportJobs"] == []
    for data_format in ("CSV", "JSON"):  # DataFormat alone is what a create may give
        assert client.create_export_job(ExportDataSource=metrics(), ExportDestination={"DataFormat": data_format})


# -- fact 2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [{}, {**metrics(), **insights()}], ids=["neither", "both"])
def test_fact02_exactly_one_data_source(client: Any, source: dict[str, Any]) -> None:
    assert bad_request(client, source) == "One data source must be provided"


def test_fact02_destination_and_data_format_are_required(emu: SesExportEmulator) -> None:
    source = {"MessageInsightsDataSource": {"StartDate": DAY.timestamp(), "EndDate": DAY.timestamp() + 3600}}
    null = "failed to satisfy constraint: Member must not be null"
    # boto3 refuses both requests client-side, so they go as raw rest-json
    assert raw_create(emu, {"ExportDataSource": source}) == (
        400,
        "BadRequestException",
        f"1 validation error detected: Value at 'exportDestination' {null}",
    )
    assert raw_create(emu, {"ExportDataSource": source, "ExportDestination": {}}) == (
        400,
        "BadRequestException",
        f"1 validation error detected: Value at 'exportDestination.dataFormat' {null}",
    )


def test_fact02_unknown_data_format(client: Any) -> None:
    # boto3 does not check enums client-side: PARQUET reaches the service
    assert bad_request(client, metrics(), {"DataFormat": "PARQUET"}) == (
        "1 validation error detected: Value at 'exportDestination.dataFormat' failed to satisfy constraint: "
        "Member must satisfy enum value set: [CSV, JSON]"
    )


# -- fact 3 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["metrics", "insights"])
@pytest.mark.parametrize("days", [0, -1], ids=["equal", "reversed"])
def test_fact03_start_must_be_before_end(client: Any, kind: str, days: int) -> None:
    build = metrics if kind == "metrics" else insights
    message = bad_request(client, build(DAY, DAY + timedelta(days=days)))
    assert message.startswith("Invalid date range")


# -- fact 4 ------------------------------------------------------------------------------------
PARTIAL_DAYS = (
    "To get daily aggregated data you must not specify partial-day timestamps. "
    "Please make your interval go from midnight to midnight UTC."
)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (DAY, DAY + timedelta(hours=12)),
        (DAY + timedelta(hours=1), DAY + timedelta(days=2)),
        (DAY, DAY + timedelta(days=1, seconds=1)),
        (DAY + timedelta(milliseconds=1), DAY + timedelta(days=1)),
    ],
    ids=["end-at-noon", "start-at-1am", "end-one-second-late", "start-one-ms-late"],
)
def test_fact04_metrics_range_must_be_midnight_to_midnight_utc(client: Any, start: datetime, end: datetime) -> None:
    assert bad_request(client, metrics(start, end)) == PARTIAL_DAYS


def test_fact04_metrics_end_exclusive_insights_inclusive_any_time(client: Any) -> None:
    # midnight UTC written in another zone is midnight UTC
    tokyo = timezone(timedelta(hours=9))
    one_day = completed(client, metrics(DAY.astimezone(tokyo), (DAY + timedelta(days=1)).astimezone(tokyo)))
    # end-exclusive: [DAY, DAY+1) is one day of messages, EndDate's day is not in it
    assert one_day["Statistics"]["ProcessedRecordsCount"] == 14_400
    two_days = completed(client, metrics(DAY, DAY + timedelta(days=2)))
    assert two_days["Statistics"]["ProcessedRecordsCount"] == 2 * 14_400
    # Message Insights: any time of day
    afternoon = completed(client, insights(DAY + timedelta(hours=13, minutes=7), DAY + timedelta(hours=14, minutes=7)))
    assert afternoon["Statistics"]["ProcessedRecordsCount"] == 600


# -- fact 5 ------------------------------------------------------------------------------------
VDM = "To use this feature you must enable Virtual Deliverability Manager"


def test_fact05_vdm_must_be_enabled(ses_export_emulator_factory: Factory) -> None:
    emu = ses_export_emulator_factory(create_rate_limit=None, vdm_enabled=False)
    client = plain_boto3(emu)
    assert bad_request(client, metrics()).startswith(VDM)
    assert bad_request(client, insights()).startswith(VDM)
    assert emu.stats()["jobs_created"] == 0
    assert emu.set_vdm(True) == {"vdm_enabled": True}
    assert completed(client, metrics())
    status, _, body = http("POST", f"{emu.endpoint_url}/_emulator/vdm", {"enabled": False})  # the control route
    assert status == 200 and json.loads(body) == {"vdm_enabled": False}
    assert bad_request(client, insights()).startswith(VDM)


def test_fact05_vdm_cli_flag_and_control_command() -> None:
    proc, lines = _start_cli("--port", "0", "--time-scale", "0.01", "--no-vdm-enabled", "--quiet")
    try:
        endpoint = lines[0].rsplit(" ", 1)[1].strip()
        client = boto3.client(
            "sesv2", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        assert bad_request(client, metrics()).startswith(VDM)
        control = [sys.executable, "-m", "ses_export_emulator", "control", "set-vdm"]
        result = subprocess.run(
            [*control, "--endpoint", endpoint, "--enabled"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and json.loads(result.stdout) == {"vdm_enabled": True}, result.stderr
        assert client.create_export_job(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# -- fact 6 ------------------------------------------------------------------------------------
def too_many(source_type: str) -> str:
    return (
        f"There are too many <{source_type}> export jobs running - either cancel one of the jobs or wait for it "
        "to complete before resubmitting."
    )


def test_fact06_twenty_unfinished_jobs_per_source_type(ses_export_emulator_factory: Factory) -> None:
    emu = ses_export_emulator_factory(create_rate_limit=None, time_scale=100.0)  # jobs stay unfinished
    client = plain_boto3(emu)
    create = client.create_export_job
    finished = create(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"]
    emu.complete_job(finished)  # a finished job does not count
    running = [create(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"] for _ in range(20)]
    error = refused(client, metrics())["Error"]
    assert error == {"Code": "LimitExceededException", "Message": too_many("METRICS_DATA")}
    # the limit is per source type: Message Insights jobs are counted on their own
    for _ in range(20):
        create(ExportDataSource=insights(), ExportDestination=CSV)
    assert refused(client, insights())["Error"]["Message"] == too_many("MESSAGE_INSIGHTS")
    client.cancel_export_job(JobId=running[0])
    assert create(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"]
    assert refused(client, metrics())["Error"]["Code"] == "LimitExceededException"


# -- fact 7 ------------------------------------------------------------------------------------
def test_fact07_new_job_reads_processing_at_once(ses_export_emulator_factory: Factory) -> None:
    emu = ses_export_emulator_factory(create_rate_limit=None, time_scale=1.0)  # 1 s in the created phase
    client = plain_boto3(emu)
    job_id = client.create_export_job(ExportDataSource=insights(), ExportDestination=CSV)["JobId"]
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "PROCESSING"
    assert [j["JobStatus"] for j in client.list_export_jobs()["ExportJobs"]] == ["PROCESSING"]
    assert client.list_export_jobs(JobStatus="CREATED")["ExportJobs"] == []
    assert emu.jobs()[0]["JobStatus"] == "PROCESSING"


def test_fact07_show_created_option_reports_created(ses_export_emulator_factory: Factory) -> None:
    emu = ses_export_emulator_factory(create_rate_limit=None, time_scale=1.0, show_created=True)
    client = plain_boto3(emu)
    job_id = client.create_export_job(ExportDataSource=insights(), ExportDestination=CSV)["JobId"]
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "CREATED"
    assert [j["JobId"] for j in client.list_export_jobs(JobStatus="CREATED")["ExportJobs"]] == [job_id]


# -- fact 8 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["get_export_job", "cancel_export_job"])
def test_fact08_unknown_job_id_is_invalid_job_id(client: Any, operation: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        getattr(client, operation)(JobId="0f8fad5b-d9cb-469f-a165-70867728950e")
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"] == {"Code": "BadRequestException", "Message": "Invalid JobId"}


# -- fact 9 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "CANCELLED"])
def test_fact09_cancel_of_finished_job_names_its_status(emu: SesExportEmulator, client: Any, status: str) -> None:
    job_id = client.create_export_job(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"]
    {"COMPLETED": emu.complete_job, "FAILED": emu.fail_job, "CANCELLED": lambda j: client.cancel_export_job(JobId=j)}[
        status
    ](job_id)
    with pytest.raises(client.exceptions.BadRequestException) as info:
        client.cancel_export_job(JobId=job_id)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Message"] == f"Cannot cancel an export job that has a <{status}> status."


# -- fact 10 -----------------------------------------------------------------------------------
def test_fact10_statistics_has_processed_records_count_only(client: Any) -> None:
    window = (DAY, DAY + timedelta(days=1))
    metrics_job = completed(client, metrics(*window, ISP=["*"]))
    insights_job = completed(client, insights(*window, MaxResults=50), "JSON")
    # the messages examined over the same window, whatever each export writes
    assert metrics_job["Statistics"] == {"ProcessedRecordsCount": 14_400}
    assert insights_job["Statistics"] == {"ProcessedRecordsCount": 14_400}
    status, _, body = download(insights_job["ExportDestination"]["S3Url"])
    assert status == 200 and 50 <= len(json.loads(body)) < 14_400  # rows written are not what it counts


def test_fact10_exported_records_count_option_counts_the_file(ses_export_emulator_factory: Factory) -> None:
    client = plain_boto3(ses_export_emulator_factory(create_rate_limit=None, exported_records_count=True))
    job = completed(client, metrics(ISP=["*"]))
    status, _, body = download(job["ExportDestination"]["S3Url"])
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert status == 200 and job["Statistics"] == {"ProcessedRecordsCount": 14_400, "ExportedRecordsCount": len(rows)}


# -- fact 11 -----------------------------------------------------------------------------------
def test_fact11_list_is_newest_first_and_pages_by_100(emu: SesExportEmulator, client: Any) -> None:
    ids = []
    for _ in range(105):
        ids.append(client.create_export_job(ExportDataSource=metrics(), ExportDestination=CSV)["JobId"])
        emu.complete_job(ids[-1])  # stay under the unfinished-job limit
    first = client.list_export_jobs()
    check_output("ListExportJobs", first)
    assert [j["JobId"] for j in first["ExportJobs"]] == ids[::-1][:100]
    created = [j["CreatedTimestamp"] for j in first["ExportJobs"]]
    assert created == sorted(created, reverse=True)
    rest = client.list_export_jobs(NextToken=first["NextToken"])
    assert [j["JobId"] for j in rest["ExportJobs"]] == ids[4::-1] and "NextToken" not in rest


def test_fact11_default_page_size_option(ses_export_emulator_factory: Factory) -> None:
    emu = ses_export_emulator_factory(create_rate_limit=None, default_page_size=2)
    client = plain_boto3(emu)
    ids = [client.create_export_job(ExportDataSource=insights(), ExportDestination=CSV)["JobId"] for _ in range(3)]
    page = client.list_export_jobs()
    assert [j["JobId"] for j in page["ExportJobs"]] == [ids[2], ids[1]] and page["NextToken"]
    assert [j["JobId"] for j in client.list_export_jobs(PageSize=3)["ExportJobs"]] == ids[::-1]


# -- fact 14 -----------------------------------------------------------------------------------
def test_fact14_tenant_name_where_the_model_has_it(emu: SesExportEmulator) -> None:
    dimension_names = MODEL.shape_for("MetricDimensionName").enum
    filter_names = list(MODEL.shape_for("MessageInsightsFilters").members)
    # no client-side validation, so an older model's refusal is the emulator's, not boto3's
    client = plain_boto3(emu, parameter_validation=False)
    tenant_metrics = metrics(TENANT_NAME=["*"], ISP=["Gmail"])
    tenant_insights = insights(Include={"TenantName": ["tenant-a"]}, MaxResults=20)
    if "TENANT_NAME" in dimension_names:
        job = completed(client, tenant_metrics)
        status, _, body = download(job["ExportDestination"]["S3Url"])
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert status == 200 and list(rows[0])[:2] == ["TENANT_NAME", "ISP"]
        assert len(rows) == len({row["TENANT_NAME"] for row in rows}) >= 2  # * lists the account's tenants
        assert "unknown" not in {row["TENANT_NAME"] for row in rows}
        job = completed(client, metrics(TENANT_NAME=["tenant-b"]), "JSON")
        status, _, body = download(job["ExportDestination"]["S3Url"])
        assert status == 200 and [r["tenant_name"] for r in json.loads(body)] == ["tenant-b"]
    else:
        assert "Dimensions" in bad_request(client, tenant_metrics)
    if "TenantName" in filter_names:
        job = completed(client, tenant_insights)
        assert job["ExportDataSource"]["MessageInsightsDataSource"]["Include"] == {"TenantName": ["tenant-a"]}
    else:
        assert "TenantName" in bad_request(client, tenant_insights)
