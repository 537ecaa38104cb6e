"""Unit tests for SesExportJobSensor(deferrable=True): poke once, defer, execute_complete (Stubber)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowSensorTimeout, AirflowSkipException
from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from tests.unit.responses import job_response

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]


def make_sensor(hook: SesExportJobHook, **kwargs: Any) -> SesExportJobSensor:
    kwargs.setdefault("timeout", 600)
    sensor = SesExportJobSensor(task_id="wait", job_id="job-1", deferrable=True, poke_interval=5, **kwargs)
    sensor.__dict__["hook"] = hook
    return sensor


def test_default_follows_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SesExportJobSensor(task_id="w", job_id="j").deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    assert SesExportJobSensor(task_id="w", job_id="j").deferrable is True
    assert SesExportJobSensor(task_id="w", job_id="j", deferrable=False).deferrable is False


def test_done_at_first_poke_returns_summary_without_deferring(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
    summary = make_sensor(hook).execute({})
    assert summary["job_status"] == "COMPLETED"
    assert summary["statistics"]["ExportedRecordsCount"] == 10


def test_running_job_defers_with_timeout_and_connection(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
    sensor = make_sensor(hook, aws_conn_id="ses", region_name="eu-west-1", verify="/ca.pem", botocore_config={"a": 1})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SesExportJobTrigger)
    _, kwargs = trigger.serialize()
    assert (kwargs["job_id"], kwargs["poll_interval"], kwargs["aws_conn_id"]) == ("job-1", 5.0, "ses")
    assert (kwargs["region_name"], kwargs["verify"], kwargs["botocore_config"]) == ("eu-west-1", "/ca.pem", {"a": 1})
    left = dt.datetime.fromisoformat(kwargs["timeout_at"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=590) < left <= dt.timedelta(seconds=600)
    assert deferred.value.method_name == "execute_complete"


@pytest.mark.parametrize(
    ("status", "error"), [("FAILED", SesExportJobFailedError), ("CANCELLED", SesExportJobCancelledError)]
)
def test_first_poke_failure_raises_like_poke_mode(
    hook: SesExportJobHook, stubber: Stubber, status: str, error: type
) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(error):
        make_sensor(hook, soft_fail=True).execute({})


def success_event(summary: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "job_id": "job-1", "job_status": "COMPLETED", "summary": summary}


def test_execute_complete_returns_the_same_summary_as_poke(hook: SesExportJobHook, stubber: Stubber) -> None:
    from airflow_provider_sesexport.triggers.poller import job_event

    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
    poked = make_sensor(hook).execute({})
    event = job_event("job-1", job_response("COMPLETED"))
    assert event is not None
    assert make_sensor(hook).execute_complete({}, event) == poked


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"status": "failed", "job_id": "job-1", "job_status": "FAILED", "message": "m"}, SesExportJobFailedError),
        ({"status": "cancelled", "job_id": "job-1", "job_status": "CANCELLED"}, SesExportJobCancelledError),
        ({"status": "error", "job_id": "job-1", "error_code": "NotFoundException"}, SesExportJobNotFoundError),
        ({"status": "timeout", "job_id": "job-1", "message": "late"}, AirflowSensorTimeout),
    ],
)
def test_execute_complete_raises_typed_errors(hook: SesExportJobHook, event: dict[str, Any], error: type) -> None:
    sensor = make_sensor(hook)
    with pytest.raises(error):
        sensor.resume_execution("execute_complete", {"event": event}, {})


def test_soft_fail_skips_on_timeout_only(hook: SesExportJobHook) -> None:
    sensor = make_sensor(hook, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout", "job_id": "job-1"}}, {})
    failed = {"status": "failed", "job_id": "job-1", "job_status": "FAILED", "message": "broken"}
    with pytest.raises(SesExportJobFailedError, match="broken"):
        sensor.resume_execution("execute_complete", {"event": failed}, {})
