from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import SesExportJobError, SesExportJobNotFoundError
from airflow_provider_sesexport.hooks.ses_export import (
    DEFAULT_RETRIES,
    UNFINISHED_PAGE_SIZE,
    SesExportJobHook,
    aiter_export_jobs,
    iter_export_jobs,
    unfinished_jobs_requests,
)
from airflow_provider_sesexport.utils.validation import SesExportInputError
from tests.unit.responses import job_response

ALL_STATUSES = ["CREATED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]


def test_client_is_sesv2(hook: SesExportJobHook) -> None:
    assert hook.client_type == "sesv2"
    assert hook.conn.meta.service_model.service_name == "sesv2"


def test_state_sets_partition_every_modeled_status(hook: SesExportJobHook) -> None:
    modeled = set(hook.conn.meta.service_model.shape_for("JobStatus").enum)
    sets = [hook.INTERMEDIATE_STATES, hook.SUCCESS_STATES, hook.FAILURE_STATES]
    assert set().union(*sets) == modeled
    assert sum(len(s) for s in sets) == len(modeled)
    assert all(isinstance(s, frozenset) for s in sets)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_get_export_job_strips_response_metadata(hook: SesExportJobHook, stubber: Stubber, status: str) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    job = hook.get_export_job("job-1")
    assert job["JobStatus"] == status
    assert "ResponseMetadata" not in job


def test_get_export_job_status(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
    assert hook.get_export_job_status("job-1") == "PROCESSING"


def test_not_found_maps_to_typed_error(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "NotFoundException", "Job not found", 404)
    with pytest.raises(SesExportJobNotFoundError, match="'job-404'") as err:
        hook.get_export_job("job-404")
    assert err.value.job_id == "job-404"


@pytest.mark.parametrize(
    ("message", "code", "status"),
    [("Invalid JobId", "BadRequestException", 400), ("Job not found", "NotFoundException", 404)],
)
def test_not_found_names_the_connection_and_region_values(
    monkeypatch: pytest.MonkeyPatch, message: str, code: str, status: int
) -> None:
    """The connection id and the region the request went to (here only the connection sets it) are in the error."""
    import json

    from botocore.stub import Stubber

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    conn = {"conn_type": "aws", "login": "k", "password": "s", "extra": {"region_name": "ap-southeast-4"}}
    monkeypatch.setenv("AIRFLOW_CONN_SES_PROBE_91C2", json.dumps(conn))
    probe = SesExportJobHook(aws_conn_id="ses_probe_91c2")
    with Stubber(probe.conn) as stubber:
        stubber.add_client_error("get_export_job", code, message, status)
        with pytest.raises(SesExportJobNotFoundError) as err:
            probe.get_export_job("job-9d7e")
    text = str(err.value)
    assert "'job-9d7e' was not found in region 'ap-southeast-4'" in text
    assert "connection aws_conn_id='ses_probe_91c2'" in text
    assert message in text
    assert (err.value.aws_conn_id, err.value.region) == ("ses_probe_91c2", "ap-southeast-4")


def test_not_found_without_a_connection_says_default_credentials(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "BadRequestException", "Invalid JobId", 400)
    with pytest.raises(SesExportJobNotFoundError, match="region 'us-east-1' of the account behind boto3's default"):
        hook.get_export_job("job-1")


def test_bad_request_maps_to_error_with_aws_message(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "BadRequestException", "JobId is malformed", 400)
    with pytest.raises(SesExportJobError, match="JobId is malformed"):
        hook.get_export_job("job-1")


@pytest.mark.parametrize("code", ["TooManyRequestsException", "InternalFailure"])
def test_other_errors_pass_through_unchanged(hook: SesExportJobHook, stubber: Stubber, code: str) -> None:
    from botocore.exceptions import ClientError

    stubber.add_client_error("get_export_job", code, "slow down", 429 if code.startswith("Too") else 500)
    with pytest.raises(ClientError) as err:
        hook.get_export_job("job-1")
    assert err.value.response["Error"]["Code"] == code


def test_create_export_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    source = job_response("CREATED")["ExportDataSource"]
    stubber.add_response(
        "create_export_job",
        {"JobId": "job-new"},
        {"ExportDataSource": source, "ExportDestination": {"DataFormat": "JSON"}},
    )
    assert hook.create_export_job(source, data_format="JSON") == "job-new"


@pytest.mark.parametrize("code", ["LimitExceededException", "BadRequestException"])
def test_create_export_job_errors(hook: SesExportJobHook, stubber: Stubber, code: str) -> None:
    stubber.add_client_error("create_export_job", code, "nope", 400)
    with pytest.raises(Exception, match="nope"):
        hook.create_export_job(job_response("CREATED")["ExportDataSource"])


def test_cancel_export_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("cancel_export_job", {}, {"JobId": "job-1"})
    assert hook.cancel_export_job("job-1") is None


def test_cancel_missing_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("cancel_export_job", "NotFoundException", "gone", 404)
    with pytest.raises(SesExportJobNotFoundError):
        hook.cancel_export_job("job-1")


def _summary(job_id: str, status: str) -> dict[str, Any]:
    return {"JobId": job_id, "ExportSourceType": "MESSAGE_INSIGHTS", "JobStatus": status}


def test_list_export_jobs_follows_next_token(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response(
        "list_export_jobs",
        {"ExportJobs": [_summary("a", "CREATED"), _summary("b", "CREATED")], "NextToken": "t1"},
        {"JobStatus": "CREATED", "PageSize": 2, "ExportSourceType": "MESSAGE_INSIGHTS"},
    )
    stubber.add_response(
        "list_export_jobs",
        {"ExportJobs": [_summary("c", "CREATED")]},
        {"JobStatus": "CREATED", "PageSize": 2, "ExportSourceType": "MESSAGE_INSIGHTS", "NextToken": "t1"},
    )
    jobs = hook.list_export_jobs(export_source_type="MESSAGE_INSIGHTS", job_status="CREATED", page_size=2)
    assert [j["JobId"] for j in jobs] == ["a", "b", "c"]


def test_list_export_jobs_empty_and_unfiltered(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("list_export_jobs", {}, {})
    assert list(hook.list_export_jobs()) == []


def test_list_errors_name_the_region_the_hook_sends_to() -> None:
    """ListExportJobs errors go through the hook's translate_error, as GetExportJob's do: the region is named."""
    from botocore.stub import Stubber

    from airflow_provider_sesexport.exceptions import SesExportVdmNotEnabledError

    probe = SesExportJobHook(aws_conn_id=None, region_name="ap-southeast-4")
    message = "To use this feature you must enable Virtual Deliverability Manager (list-7c1e)."
    with Stubber(probe.conn) as stubber:
        stubber.add_client_error("list_export_jobs", "BadRequestException", message, 400)
        with pytest.raises(SesExportVdmNotEnabledError) as err:
            list(probe.list_export_jobs())
    assert err.value.region == "ap-southeast-4"
    assert "--region ap-southeast-4" in str(err.value) and "list-7c1e" in str(err.value)


def test_list_is_lazy(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("list_export_jobs", {"ExportJobs": [_summary("a", "CREATED")], "NextToken": "t"}, {})
    iterator = hook.list_export_jobs()
    assert next(iterator)["JobId"] == "a"  # the second page is not requested until needed


def test_unfinished_listing_sync_and_async_walk_the_same_pages(hook: SesExportJobHook, stubber: Stubber) -> None:
    """The hook, the poller and the slot trigger list unfinished jobs with one rule: same requests, same jobs."""
    pages = {  # (JobStatus, NextToken) -> page
        ("CREATED", None): {"ExportJobs": [_summary("c1", "CREATED")], "NextToken": "tok-c9f"},
        ("CREATED", "tok-c9f"): {"ExportJobs": [_summary("c2", "CREATED")]},
        ("PROCESSING", None): {"ExportJobs": [_summary("p1", "PROCESSING")]},
    }
    sent: list[dict[str, Any]] = []

    def call(**request: Any) -> dict[str, Any]:
        sent.append(request)
        return pages[(request["JobStatus"], request.get("NextToken"))]

    async def acall(**request: Any) -> dict[str, Any]:
        return call(**request)

    async def walk_async() -> list[str]:
        return [job["JobId"] async for job in aiter_export_jobs(acall, unfinished_jobs_requests("METRICS_DATA"))]

    requests = unfinished_jobs_requests("METRICS_DATA")
    assert [job["JobId"] for job in iter_export_jobs(call, requests)] == ["c1", "c2", "p1"]
    assert requests == unfinished_jobs_requests("METRICS_DATA")  # the caller's requests are not mutated
    synced, sent[:] = list(sent), []
    assert asyncio.run(walk_async()) == ["c1", "c2", "p1"]
    assert sent == synced
    scope = {"ExportSourceType": "METRICS_DATA", "PageSize": UNFINISHED_PAGE_SIZE}
    assert synced == [
        {**scope, "JobStatus": "CREATED"},
        {**scope, "JobStatus": "CREATED", "NextToken": "tok-c9f"},
        {**scope, "JobStatus": "PROCESSING"},
    ]
    # The hook's method rides on the same walk, against the real client (Stubber checks each request).
    for request in synced:
        stubber.add_response("list_export_jobs", pages[(request["JobStatus"], request.get("NextToken"))], request)
    assert [job["JobId"] for job in hook.list_unfinished_export_jobs("METRICS_DATA")] == ["c1", "c2", "p1"]
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("bad", [None, "", "   ", "None", 42, ["job-1"], " job-1"])
def test_bad_job_id_rejected_before_any_request(hook: SesExportJobHook, stubber: Stubber, bad: Any) -> None:
    with pytest.raises(SesExportInputError, match="job_id"):
        hook.get_export_job(bad)
    with pytest.raises(SesExportInputError, match="job_id"):
        hook.cancel_export_job(bad)


def test_default_retry_mode_retries_throttling() -> None:
    hook = SesExportJobHook(aws_conn_id=None, region_name="us-east-1")
    assert hook.config.retries == DEFAULT_RETRIES
    assert hook.conn.meta.config.retries["mode"] == "standard"


def test_user_retries_win() -> None:
    hook = SesExportJobHook(
        aws_conn_id=None, region_name="us-east-1", config={"retries": {"mode": "adaptive", "max_attempts": 2}}
    )
    assert hook.config.retries == {"mode": "adaptive", "max_attempts": 2}


def test_connection_config_kwargs_retries_win(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "aws",
        "extra": {"region_name": "eu-west-1", "config_kwargs": {"retries": {"mode": "legacy", "max_attempts": 1}}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SES_RETRY_TEST", json.dumps(conn))
    hook = SesExportJobHook(aws_conn_id="ses_retry_test")
    assert hook.config.retries == {"mode": "legacy", "max_attempts": 1}
    assert hook.region_name == "eu-west-1"


def test_connection_config_without_retries_gets_default(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "aws", "extra": {"config_kwargs": {"read_timeout": 7}}}
    monkeypatch.setenv("AIRFLOW_CONN_SES_TIMEOUT_TEST", json.dumps(conn))
    config = SesExportJobHook(aws_conn_id="ses_timeout_test").config
    assert config.read_timeout == 7
    assert config.retries == DEFAULT_RETRIES
    assert isinstance(config, Config)


def test_endpoint_url_from_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "aws", "extra": {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:1"}}
    monkeypatch.setenv("AIRFLOW_CONN_SES_ENDPOINT_TEST", json.dumps(conn))
    assert SesExportJobHook(aws_conn_id="ses_endpoint_test").conn.meta.endpoint_url == "http://127.0.0.1:1"


def test_custom_waiter_is_found(hook: SesExportJobHook) -> None:
    assert "export_job_complete" in hook.list_waiters()
    assert hook.waiter_path.is_file()
