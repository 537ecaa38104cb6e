"""The four operations through real boto3 / aiobotocore over HTTP, checked against botocore's model."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ses_export_emulator import Rule, SesExportEmulator

from .conftest import NO_RETRIES
from .helpers import (
    check_output,
    create,
    http,
    insights_source,
    metrics_source,
    wait_status,
)

pytestmark = pytest.mark.integration


def test_plain_boto3_client_full_lifecycle(ses_export_emulator_factory: Any) -> None:
    # CREATED and ExportedRecordsCount are the model's; real SES shows neither (facts 7 and 10)
    emu = ses_export_emulator_factory(
        time_scale=0.1, create_rate_limit=None, show_created=True, exported_records_count=True
    )
    client = boto3.client(
        "sesv2",
        endpoint_url=emu.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    job_id = create(client)
    seen: list[str] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = client.get_export_job(JobId=job_id)
        check_output("GetExportJob", response)
        listed = client.list_export_jobs()["ExportJobs"]
        if response["JobStatus"] == "COMPLETED":
            # the listing made after the read can only be at the same or a later state
            assert listed[0]["JobStatus"] == "COMPLETED"
        if not seen or seen[-1] != response["JobStatus"]:
            seen.append(response["JobStatus"])
        if response["JobStatus"] == "COMPLETED":
            break
        time.sleep(0.01)
    assert seen == ["CREATED", "PROCESSING", "COMPLETED"]
    assert "CompletedTimestamp" in response and response["CompletedTimestamp"] >= response["CreatedTimestamp"]
    assert response["ExportDestination"]["S3Url"].startswith(emu.endpoint_url + "/_exports/")
    assert response["Statistics"]["ExportedRecordsCount"] == 2  # one row per ISP, totals over the range
    assert response["ExportDataSource"]["MetricsDataSource"]["Dimensions"] == {"ISP": ["Gmail", "Yahoo"]}
    assert "FailureInfo" not in response


def test_unfinished_job_has_no_output_members(client: Any) -> None:
    job_id = create(client, insights_source())
    response = client.get_export_job(JobId=job_id)
    check_output("GetExportJob", response)
    assert response["JobStatus"] in {"CREATED", "PROCESSING"}
    assert response["ExportSourceType"] == "MESSAGE_INSIGHTS"
    assert response["ExportDestination"] == {"DataFormat": "CSV"}
    for absent in ("CompletedTimestamp", "Statistics", "FailureInfo"):
        assert absent not in response


def test_raw_wire_bodies_conform(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client, metrics_source(), "JSON")
    wait_status(client, job_id)
    status, headers, body = http("GET", f"{emu.endpoint_url}/v2/email/export-jobs/{job_id}")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    raw = json.loads(body)
    check_output("GetExportJob", raw, wire=True)
    assert isinstance(raw["CreatedTimestamp"], float)
    assert isinstance(raw["ExportDataSource"]["MetricsDataSource"]["StartDate"], float)
    status, _, body = http("POST", f"{emu.endpoint_url}/v2/email/list-export-jobs", {"PageSize": 5})
    assert status == 200
    check_output("ListExportJobs", json.loads(body), wire=True)
    status, headers, body = http("POST", f"{emu.endpoint_url}/v2/email/export-jobs", {"ExportDataSource": {}})
    assert status == 400 and json.loads(body)["message"] == (
        "1 validation error detected: Value at 'exportDestination' failed to satisfy constraint: "
        "Member must not be null"
    )
    assert headers["x-amzn-ErrorType"] == "BadRequestException"


def test_failed_rule_sets_failure_info(emu: SesExportEmulator, client: Any) -> None:
    emu.fail_next(1, message="boom: quota", source_type="MESSAGE_INSIGHTS")
    ok_id = create(client, metrics_source())
    failed_id = create(client, insights_source())
    next_id = create(client, insights_source())
    failed = wait_status(client, failed_id)
    check_output("GetExportJob", failed)
    assert failed["JobStatus"] == "FAILED"
    assert failed["FailureInfo"]["ErrorMessage"] == "boom: quota"
    assert "X-Amz-Signature=" in failed["FailureInfo"]["FailedRecordsS3Url"]
    assert "Statistics" not in failed and "S3Url" not in failed["ExportDestination"]
    assert "CompletedTimestamp" in failed
    assert wait_status(client, ok_id)["JobStatus"] == "COMPLETED"
    assert wait_status(client, next_id)["JobStatus"] == "COMPLETED"


def test_rules_by_index_job_id_and_predicate(emu: SesExportEmulator, client: Any) -> None:
    emu.add_rule(action="fail", job_index=1, message="second job fails")
    emu.add_rule(
        Rule(
            action="fail",
            predicate=lambda p: "MaxResults" in p["ExportDataSource"].get("MessageInsightsDataSource", {}),
            message="predicate",
        )
    )
    emu.advance_after(reads=10**6)  # holds the first job unfinished however slow this machine is
    first, second, third = create(client), create(client), create(client, insights_source(7))
    emu.add_rule(action="hang", job_id=first)  # applies at once to the existing unfinished job
    assert [rule["job_id"] for rule in emu.rules()] == [None, None]  # used up, not queued
    emu.clear_rules()  # drops the hold: from now on only the hang keeps the first job PROCESSING
    assert wait_status(client, second)["FailureInfo"]["ErrorMessage"] == "second job fails"
    assert wait_status(client, third)["FailureInfo"]["ErrorMessage"] == "predicate"
    # the first job was created before the third, so its nominal lifecycle is over too
    assert client.get_export_job(JobId=first)["JobStatus"] == "PROCESSING"


def test_hang_rule_stays_processing_until_cancelled(emu: SesExportEmulator, client: Any) -> None:
    emu.add_rule(action="hang", count=1)
    job_id = create(client)
    wait_status(client, job_id, {"PROCESSING"})
    time.sleep(0.1)  # 3x the whole nominal lifecycle at this time scale
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "PROCESSING"
    response = client.cancel_export_job(JobId=job_id)
    check_output("CancelExportJob", response)
    cancelled = client.get_export_job(JobId=job_id)
    check_output("GetExportJob", cancelled)
    assert cancelled["JobStatus"] == "CANCELLED" and "CompletedTimestamp" in cancelled
    assert client.list_export_jobs(JobStatus="CANCELLED")["ExportJobs"][0]["JobId"] == job_id
    with pytest.raises(client.exceptions.BadRequestException, match="CANCELLED"):
        client.cancel_export_job(JobId=job_id)


def test_cancel_created_job_and_finished_job(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(time_scale=1.0, create_rate_limit=None, show_created=True)
    client = emu.client(config=NO_RETRIES)
    job_id = create(client)
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "CREATED"
    client.cancel_export_job(JobId=job_id)
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "CANCELLED"
    done = create(client)
    emu.complete_job(done)
    with pytest.raises(client.exceptions.BadRequestException) as info:
        client.cancel_export_job(JobId=done)
    assert info.value.response["Error"]["Code"] == "BadRequestException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "COMPLETED" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("operation", ["get", "cancel"])
def test_not_found_style_404_answers_as_the_model(ses_export_emulator_factory: Any, operation: str) -> None:
    client = ses_export_emulator_factory(create_rate_limit=None, not_found_style="404").client(config=NO_RETRIES)
    call = client.get_export_job if operation == "get" else client.cancel_export_job
    with pytest.raises(client.exceptions.NotFoundException) as info:
        call(JobId="does-not-exist")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "does-not-exist" in info.value.response["Error"]["Message"]


def test_force_complete_and_fail(emu: SesExportEmulator, ses_export_emulator_factory: Any) -> None:
    slow = ses_export_emulator_factory(time_scale=100.0, create_rate_limit=None)
    client = slow.client(config=NO_RETRIES)
    a, b = create(client), create(client)
    slow.complete_job(a)
    slow.fail_job(b, "forced failure")
    assert client.get_export_job(JobId=a)["JobStatus"] == "COMPLETED"
    failed = client.get_export_job(JobId=b)
    assert failed["JobStatus"] == "FAILED" and failed["FailureInfo"]["ErrorMessage"] == "forced failure"
    assert [j["JobStatus"] for j in slow.jobs()] == ["COMPLETED", "FAILED"]


def test_create_rate_limit(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(time_scale=1.0, create_rate_limit=1.0)
    client = emu.client(config=NO_RETRIES)
    create(client)
    with pytest.raises(client.exceptions.TooManyRequestsException) as info:
        create(client)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    retrying = emu.client(config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    job_id = create(retrying)
    assert job_id
    stats = emu.stats()["operations"]["CreateExportJob"]
    assert stats["throttled"] >= 1 and stats["succeeded"] == 2
    assert emu.stats()["jobs_created"] == 2


def test_limit_exceeded_on_too_many_unfinished_jobs(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(time_scale=100.0, create_rate_limit=None, max_unfinished_jobs=2)
    client = emu.client(config=NO_RETRIES)
    first = create(client)
    create(client)
    with pytest.raises(client.exceptions.LimitExceededException) as info:
        create(client)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    client.cancel_export_job(JobId=first)
    assert create(client)


def test_list_pagination_filters_newest_first(emu: SesExportEmulator, client: Any) -> None:
    ids = [create(client, metrics_source() if i % 2 else insights_source()) for i in range(5)]
    emu.complete_job(ids[0])
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"PageSize": 2}
        if token:
            kwargs["NextToken"] = token
        response = client.list_export_jobs(**kwargs)
        check_output("ListExportJobs", response)
        pages.append([job["JobId"] for job in response["ExportJobs"]])
        token = response.get("NextToken")
        if not token:
            break
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    metrics = client.list_export_jobs(ExportSourceType="METRICS_DATA")["ExportJobs"]
    assert [j["JobId"] for j in metrics] == [ids[3], ids[1]]
    assert all(j["ExportSourceType"] == "METRICS_DATA" for j in metrics)
    completed = client.list_export_jobs(JobStatus="COMPLETED", PageSize=10)["ExportJobs"]
    assert ids[0] in [j["JobId"] for j in completed]
    assert all("CompletedTimestamp" in j for j in completed)
    both = client.list_export_jobs(ExportSourceType="MESSAGE_INSIGHTS", JobStatus="COMPLETED")["ExportJobs"]
    assert [j["JobId"] for j in both] == [ids[0]] or all(j["ExportSourceType"] == "MESSAGE_INSIGHTS" for j in both)
    with pytest.raises(client.exceptions.BadRequestException, match="NextToken"):
        client.list_export_jobs(NextToken="garbage!!")
    with pytest.raises(client.exceptions.BadRequestException, match="PageSize"):
        client.list_export_jobs(PageSize=0)


def test_other_operations_are_not_emulated(client: Any) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        client.list_contact_lists()
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_deleted_job_disappears(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client)
    emu.delete_job(job_id)
    with pytest.raises(client.exceptions.BadRequestException, match="Invalid JobId"):
        client.get_export_job(JobId=job_id)
    assert client.list_export_jobs()["ExportJobs"] == []


def test_same_seed_same_job_ids(ses_export_emulator_factory: Any) -> None:
    a = ses_export_emulator_factory(seed=7, create_rate_limit=None)
    b = ses_export_emulator_factory(seed=7, create_rate_limit=None)
    c = ses_export_emulator_factory(seed=8, create_rate_limit=None)
    ids = [create(e.client(config=NO_RETRIES)) for e in (a, b, c)]
    assert ids[0] == ids[1] != ids[2]


def test_aiobotocore_get_and_list(emu: SesExportEmulator, client: Any) -> None:
    from aiobotocore.session import get_session

    job_id = create(client)

    async def run() -> tuple[dict[str, Any], dict[str, Any], str]:
        session = get_session()
        async with session.create_client(
            "sesv2",
            endpoint_url=emu.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=NO_RETRIES,
        ) as aio:
            for _ in range(500):
                got = await aio.get_export_job(JobId=job_id)
                if got["JobStatus"] == "COMPLETED":
                    break
                await asyncio.sleep(0.005)
            listed = await aio.list_export_jobs(PageSize=1)
            try:
                await aio.get_export_job(JobId="missing")
            except aio.exceptions.BadRequestException as exc:
                code = exc.response["Error"]["Message"]
            return got, listed, code

    got, listed, code = asyncio.run(run())
    check_output("GetExportJob", got)
    check_output("ListExportJobs", listed)
    assert got["JobStatus"] == "COMPLETED" and listed["ExportJobs"][0]["JobId"] == job_id
    assert code == "Invalid JobId"


def test_concurrent_polls_do_not_serialise(emu: SesExportEmulator, client: Any) -> None:
    import aiohttp

    job_id = create(client)
    emu.set_faults(latency=0.05)
    url = f"{emu.endpoint_url}/v2/email/export-jobs/{job_id}"

    async def run() -> list[int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> int:
                async with session.get(url) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one() for _ in range(500)))

    started = time.monotonic()
    statuses = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert statuses == [200] * 500
    assert elapsed < 5.0, f"500 polls with 50 ms latency took {elapsed:.2f}s (serialised would be 25 s)"
    assert emu.stats()["operations"]["GetExportJob"]["requests"] == 500
