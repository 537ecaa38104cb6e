"""Fault injection through real boto3, the JSON control API and the counters."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, HTTPClientError

from ses_export_emulator import SesExportEmulator

from .conftest import NO_RETRIES
from .helpers import create, http

pytestmark = pytest.mark.integration


def test_api_rate_limit_throttles_and_counts(emu: SesExportEmulator, client: Any) -> None:
    emu.set_faults(api_rate_limit=5)
    outcomes = []
    for _ in range(12):
        try:
            client.list_export_jobs()
            outcomes.append("ok")
        except client.exceptions.TooManyRequestsException as exc:
            outcomes.append(str(exc.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert "429" in outcomes and outcomes[0] == "ok"
    stats = emu.stats()["operations"]["ListExportJobs"]
    assert stats["requests"] == 12
    assert stats["throttled"] == outcomes.count("429")
    assert stats["succeeded"] == outcomes.count("ok")
    assert emu.stats()["total_throttled"] == outcomes.count("429")


def test_denied_operation_answers_access_denied(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client)
    emu.set_faults(deny_operations=["ListExportJobs"])
    with pytest.raises(ClientError) as err:
        client.list_export_jobs()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "ses:ListExportJobs" in err.value.response["Error"]["Message"]
    assert client.get_export_job(JobId=job_id)["JobId"] == job_id  # other operations still work
    assert emu.stats()["operations"]["ListExportJobs"]["client_errors"] == 1
    emu.clear_faults()
    assert isinstance(client.list_export_jobs()["ExportJobs"], list)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_exhaust_retries(emu: SesExportEmulator, status: int) -> None:
    emu.set_faults(error_rate=1.0, error_status=status)
    client = emu.client(config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))
    with pytest.raises(ClientError) as info:
        client.list_export_jobs()
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert emu.stats()["operations"]["ListExportJobs"]["server_errors"] == 3


def test_error_rate_is_deterministic_for_a_seed(ses_export_emulator_factory: Any) -> None:
    patterns = []
    for seed in (11, 11):
        emu = ses_export_emulator_factory(seed=seed, faults={"error_rate": 0.5})
        client = emu.client(config=NO_RETRIES)
        pattern = []
        for _ in range(20):
            try:
                client.list_export_jobs()
                pattern.append(1)
            except ClientError:
                pattern.append(0)
        patterns.append(pattern)
    assert patterns[0] == patterns[1] and 0 < sum(patterns[0]) < 20


def test_latency(emu: SesExportEmulator, client: Any) -> None:
    emu.set_faults(latency=0.2)
    started = time.monotonic()
    client.list_export_jobs()
    assert time.monotonic() - started >= 0.2
    emu.clear_faults()
    started = time.monotonic()
    client.list_export_jobs()
    assert time.monotonic() - started < 0.2


def test_connection_reset(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client)
    emu.set_faults(reset_rate=1.0)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError, HTTPClientError)):
        client.get_export_job(JobId=job_id)
    assert emu.stats()["operations"]["GetExportJob"]["resets"] >= 1
    emu.set_faults(reset_rate=0.0)
    assert client.get_export_job(JobId=job_id)["JobId"] == job_id


def _until_answered(call: Any, cap: float = 30.0) -> None:
    """Call ``call`` until it stops raising (the storm's window has closed), failing after ``cap`` seconds."""
    deadline = time.monotonic() + cap
    while True:
        try:
            call()
            return
        except ClientError:
            assert time.monotonic() < deadline, "the storm did not end"
            time.sleep(0.05)


def test_throttle_and_fail_storms_are_wall_clock(ses_export_emulator_factory: Any) -> None:
    # windows long enough for the calls inside them on a loaded machine; their end is polled for
    emu = ses_export_emulator_factory(time_scale=0.001)  # storms are NOT scaled
    client = emu.client(config=NO_RETRIES)
    emu.throttle_all(2.0)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.list_export_jobs()
    with pytest.raises(client.exceptions.TooManyRequestsException):
        create(client)
    _until_answered(client.list_export_jobs)
    emu.fail_all(2.0, status=503)
    with pytest.raises(ClientError) as info:
        client.list_export_jobs()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    _until_answered(client.list_export_jobs)


def test_throttle_next_counts_calls_of_one_operation_not_seconds(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client)
    emu.throttle_next(2, "GetExportJob")
    assert emu.faults()["throttle_next_remaining"] == {"GetExportJob": 2}
    client.list_export_jobs()  # another operation: not counted
    time.sleep(0.05)  # a window counted in calls does not close with time
    for _ in range(2):
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.get_export_job(JobId=job_id)
    assert client.get_export_job(JobId=job_id)["JobId"] == job_id
    ops = emu.stats()["operations"]
    assert (ops["GetExportJob"]["throttled"], ops["ListExportJobs"]["throttled"]) == (2, 0)
    assert emu.faults()["throttle_next_remaining"] == {}


def test_throttle_next_of_any_operation_over_http(emu: SesExportEmulator, client: Any) -> None:
    status, _, body = http("POST", f"{emu.endpoint_url}/_emulator/throttle-next", {"n": 1})
    assert status == 200 and json.loads(body)["throttle_next_remaining"] == {"any": 1}
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.list_export_jobs()
    client.list_export_jobs()
    emu.throttle_next(5)
    emu.clear_faults()
    client.list_export_jobs()
    assert http("POST", f"{emu.endpoint_url}/_emulator/throttle-next", {"n": 1, "operation": "Nope"})[0] == 400


def test_control_api_over_http(emu: SesExportEmulator, client: Any) -> None:
    base = f"{emu.endpoint_url}/_emulator"
    assert http("GET", f"{base}/health")[0] == 200
    status, _, body = http("POST", f"{base}/faults", {"throttle_all_seconds": 10})
    assert status == 200 and json.loads(body)["throttle_all_remaining"] > 9
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.list_export_jobs()
    assert http("DELETE", f"{base}/faults")[0] == 200
    assert http("POST", f"{base}/faults", {"nonsense": 1})[0] == 400
    status, _, body = http("POST", f"{base}/rules", {"fail_next": 1, "message": "via http"})
    assert status == 200 and json.loads(body)["count"] == 1
    job_id = create(client)
    status, _, body = http("GET", f"{base}/jobs")
    assert json.loads(body)["jobs"][0]["outcome"] == "fail"
    assert http("POST", f"{base}/jobs/{job_id}/complete")[0] == 200
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "COMPLETED"
    second = create(client)
    assert http("POST", f"{base}/jobs/{second}/fail", {"message": "nope"})[0] == 200
    assert client.get_export_job(JobId=second)["FailureInfo"]["ErrorMessage"] == "nope"
    assert http("POST", f"{base}/expire-urls")[0] == 200
    assert http("DELETE", f"{base}/jobs/{job_id}")[0] == 200
    assert http("DELETE", f"{base}/jobs/{job_id}")[0] == 404
    with pytest.raises(client.exceptions.BadRequestException, match="Invalid JobId"):
        client.get_export_job(JobId=job_id)
    status, _, body = http("GET", f"{base}/stats")
    stats = json.loads(body)
    assert stats["jobs_created"] == 2 and stats["operations"]["GetExportJob"]["client_errors"] == 1
    assert stats["operations"]["ListExportJobs"]["throttled"] == 1
    assert http("POST", f"{base}/stats/reset")[0] == 200
    assert emu.stats()["total_requests"] == 0
    assert http("DELETE", f"{base}/rules")[0] == 200 and json.loads(http("GET", f"{base}/rules")[2])["rules"] == []


def test_reset_stats_python(emu: SesExportEmulator, client: Any) -> None:
    create(client)
    assert emu.stats()["jobs_created"] == 1
    emu.reset_stats()
    assert emu.stats()["jobs_created"] == 0 and emu.stats()["total_requests"] == 0
