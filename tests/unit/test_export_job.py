"""The one interpretation of a GetExportJob response, and the places that must agree with it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.triggers.ses_export import summary_from_event
from airflow_provider_sesexport.utils import aws_errors, export_job, job_states, job_summary
from airflow_provider_sesexport.utils.export_job import (
    ExportJobOutcome,
    interpret_export_job,
    observe_export_job,
    raise_for_outcome,
)
from tests.unit.responses import FAILED_RECORDS, PRESIGNED, job_response

NOW = dt.datetime(2026, 11, 1, 6, 10, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("CREATED", "running"),
        ("PROCESSING", "running"),
        ("COMPLETED", "success"),
        ("FAILED", "failed"),
        ("CANCELLED", "cancelled"),
        ("ARCHIVING", "running"),
    ],
)
def test_interpret_maps_every_status(status: str, outcome: str) -> None:
    result = interpret_export_job("job-1", job_response(status), NOW)
    assert result.status == outcome
    assert result.job_status == status
    assert result.finished is (outcome != "running")
    assert result.succeeded is (outcome == "success")
    assert (result.warning is not None) is (status == "ARCHIVING")
    assert result.elapsed_seconds == 600.0


def test_interpret_is_pure_and_keeps_urls_out() -> None:
    job = job_response("FAILED")
    job["FailureInfo"] = {"ErrorMessage": f"see {PRESIGNED}", "FailedRecordsS3Url": FAILED_RECORDS}
    with mock.patch("airflow_provider_sesexport.utils.redaction.mask_url") as mask:
        outcome = interpret_export_job("job-1", job, NOW)
    mask.assert_not_called()
    text = json.dumps(outcome.to_event())
    assert "X-Amz-Signature" not in text and "see https://" in text
    assert outcome.failed_records_url and outcome.failed_records_url.endswith("?<redacted>")


def test_outcome_round_trips_through_the_trigger_event() -> None:
    for status in ("COMPLETED", "FAILED", "CANCELLED"):
        outcome = interpret_export_job("job-1", job_response(status), NOW)
        event = json.loads(json.dumps(outcome.to_event()))  # what the triggerer stores and hands back
        back = ExportJobOutcome.from_event(event)
        assert (back.status, back.job_status, back.summary, back.job_id) == (
            outcome.status,
            outcome.job_status,
            outcome.summary,
            "job-1",
        )


@pytest.mark.parametrize(
    ("status", "error"), [("FAILED", SesExportJobFailedError), ("CANCELLED", SesExportJobCancelledError)]
)
def test_raise_for_outcome_and_event_raise_the_same_error(status: str, error: type[Exception]) -> None:
    job = job_response(status)
    job["FailureInfo"] = {"ErrorMessage": "bucket policy denies"}
    outcome = interpret_export_job("job-1", job, NOW)
    with pytest.raises(error) as direct:
        raise_for_outcome(outcome)
    with pytest.raises(error) as from_event:
        summary_from_event(outcome.to_event(), TimeoutError)
    assert str(direct.value) == str(from_event.value)
    assert "bucket policy denies" in str(direct.value) and status in str(direct.value)


def test_observe_logs_one_poll_line_and_the_unknown_status_warning() -> None:
    logger = mock.Mock(spec=logging.Logger)
    outcome = observe_export_job("job-1", job_response("ARCHIVING"), logger, NOW)
    assert outcome.status == "running"
    (info,) = logger.info.call_args_list
    assert info.args[1] == "SES export job job-1: status ARCHIVING, 600s since creation"
    (warning,) = logger.warning.call_args_list
    assert "ARCHIVING" in warning.args[1]


def test_waiter_json_lists_exactly_the_state_sets() -> None:
    """The waiter is the one place besides utils/export_job.py that names the statuses: they must agree."""
    path = Path(__file__).parents[2] / "airflow_provider_sesexport" / "waiters" / "sesv2.json"
    acceptors = json.loads(path.read_text())["waiters"]["export_job_complete"]["acceptors"]
    by_state: dict[str, set[str]] = {}
    for acceptor in acceptors:
        assert acceptor["matcher"] == "path" and acceptor["argument"] == "JobStatus"
        by_state.setdefault(acceptor["state"], set()).add(acceptor["expected"])
    assert by_state == {
        "success": set(export_job.SUCCESS_STATES),
        "failure": set(export_job.FAILURE_STATES),
        "retry": set(export_job.INTERMEDIATE_STATES),
    }


def test_the_state_sets_are_the_one_modules_wherever_they_are_imported_from() -> None:
    """The hook's class attributes and the import paths the rules had before they moved name the same objects."""
    from airflow_provider_sesexport.hooks import _download
    from airflow_provider_sesexport.hooks import ses_export as hook_module

    for name in ("INTERMEDIATE_STATES", "SUCCESS_STATES", "FAILURE_STATES"):
        leaf = getattr(export_job, name)
        assert getattr(SesExportJobHook, name) is leaf and getattr(hook_module, name) is leaf, name
    moved = [(job_states, name) for name in job_states.__all__] + [(job_summary, name) for name in job_summary.__all__]
    assert len(moved) > 15
    for module, name in moved:
        assert getattr(module, name) is getattr(export_job, name), (module.__name__, name)
    assert (hook_module.DEFAULT_CHUNK_SIZE, hook_module.DEFAULT_MAX_ATTEMPTS) == (
        _download.DEFAULT_CHUNK_SIZE,
        _download.DEFAULT_MAX_ATTEMPTS,
    )


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("NotFoundException", None, True),
        ("BadRequestException", "Invalid JobId", True),
        ("BadRequestException", "One data source must be provided", False),
        ("TooManyRequestsException", "Invalid JobId", False),
    ],
)
def test_job_not_found_rule(code: str, message: str | None, expected: bool) -> None:
    assert aws_errors.means_job_not_found(code, message) is expected


# -- the hook's wait: a loop over poll_export_job, one GetExportJob per poll ------------------------------
@pytest.fixture
def hook() -> SesExportJobHook:
    return SesExportJobHook(aws_conn_id=None, region_name="us-east-1")


def test_wait_polls_with_one_pause_of_waiter_delay(hook: SesExportJobHook, waiter_sleeps: list[float]) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
        stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
        summary = hook.wait_for_export_job("job-1", waiter_delay=1.5, waiter_max_attempts=3)
        stubber.assert_no_pending_responses()
    assert waiter_sleeps == [1.5]  # one pause of waiter_delay between the two polls
    assert summary["job_status"] == "COMPLETED"
    assert PRESIGNED not in json.dumps(summary)


def test_wait_gives_up_after_waiter_max_attempts_naming_both(
    hook: SesExportJobHook, waiter_sleeps: list[float]
) -> None:
    with Stubber(hook.conn) as stubber:
        for _ in range(3):
            stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
        with pytest.raises(SesExportJobError, match=r"after 3 polls 2\.0s apart.*waiter_max_attempts or waiter_delay"):
            hook.wait_for_export_job("job-1", waiter_delay=2, waiter_max_attempts=3)
        stubber.assert_no_pending_responses()
    assert waiter_sleeps == [2.0, 2.0]


def test_wait_treats_an_unknown_job_as_not_found_the_way_real_ses_says_it(hook: SesExportJobHook) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_client_error("get_export_job", "BadRequestException", "Invalid JobId", 400)
        with pytest.raises(SesExportJobNotFoundError):
            hook.wait_for_export_job("job-1", waiter_delay=1, waiter_max_attempts=3)


def test_wait_survives_a_network_error_that_outlasted_botocore(hook: SesExportJobHook) -> None:
    client = hook.conn
    original = client._make_api_call
    calls: list[str] = []

    def make_api_call(operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
        return original(operation, params)

    with Stubber(client) as stubber, mock.patch.object(client, "_make_api_call", side_effect=make_api_call):
        stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
        summary = hook.wait_for_export_job("job-1", waiter_delay=1, waiter_max_attempts=3)
    assert summary["job_status"] == "COMPLETED"
    assert calls == ["GetExportJob", "GetExportJob"]
