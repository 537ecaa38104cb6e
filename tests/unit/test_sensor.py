from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowFailException, PokeReturnValue
from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.utils.validation import SesExportInputError
from tests.unit.responses import FAILED_RECORDS, PRESIGNED, job_response


def make_sensor(hook: SesExportJobHook, job_id: Any = "job-1", **kwargs: Any) -> SesExportJobSensor:
    sensor = SesExportJobSensor(task_id="wait", job_id=job_id, **kwargs)
    sensor.__dict__["hook"] = hook  # the mixin's cached_property: use the stubbed hook
    return sensor


def test_defaults() -> None:
    sensor = SesExportJobSensor(task_id="wait", job_id="job-1")
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 60
    assert "job_id" in sensor.template_fields
    assert {"aws_conn_id", "region_name", "verify"} <= set(sensor.template_fields)


def test_mode_is_validated_by_airflow() -> None:
    with pytest.raises(Exception, match="mode"):
        SesExportJobSensor(task_id="wait", job_id="job-1", mode="sometimes")


def test_poke_mode_can_be_chosen() -> None:
    assert SesExportJobSensor(task_id="wait", job_id="job-1", mode="poke").mode == "poke"


def test_completed_returns_summary(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
    result = make_sensor(hook).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    summary = result.xcom_value
    assert summary["job_id"] == "job-1"
    assert summary["job_status"] == "COMPLETED"
    assert summary["statistics"] == {"ProcessedRecordsCount": 12, "ExportedRecordsCount": 10}
    assert summary["s3_url_expires_at"].startswith("2026-11-01T06:35:00")
    assert "X-Amz" not in str(summary) and "https://" not in str(summary)


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING"])
def test_intermediate_is_not_done(hook: SesExportJobHook, stubber: Stubber, status: str) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    assert make_sensor(hook).poke({}) is False


def test_unknown_status_is_not_done_and_warns(
    hook: SesExportJobHook, stubber: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = job_response("PROCESSING")
    stubber.add_response("get_export_job", response, {"JobId": "job-1"})
    # botocore does not validate enums in responses, so a future status arrives as-is
    response["JobStatus"] = "ARCHIVING"
    sensor = make_sensor(hook)
    warnings: list[str] = []
    # monkeypatch restores it: on Airflow 2 the logger object is shared by every instance of the class
    monkeypatch.setattr(sensor.log, "warning", lambda msg, *a, **k: warnings.append(msg % a))
    assert sensor.poke({}) is False
    assert any("ARCHIVING" in w for w in warnings)


def test_failed_raises_typed_error_with_aws_message(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("FAILED"), {"JobId": "job-1"})
    with pytest.raises(SesExportJobFailedError) as err:
        make_sensor(hook).poke({})
    error = err.value
    assert isinstance(error, AirflowFailException) and isinstance(error, SesExportJobError)
    assert "job-1" in str(error) and "Access denied to the metrics" in str(error)
    assert error.job_id == "job-1" and error.job_status == "FAILED"
    assert error.error_message == "Access denied to the metrics"
    assert "X-Amz-Signature" not in str(error) and "X-Amz-Signature" not in error.failed_records_url
    assert error.failed_records_url.startswith(FAILED_RECORDS.split("?")[0])


def test_cancelled_raises_typed_error(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("CANCELLED"), {"JobId": "job-1"})
    with pytest.raises(SesExportJobCancelledError, match="job-1") as err:
        make_sensor(hook).poke({})
    assert isinstance(err.value, AirflowFailException)


def test_not_found(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "NotFoundException", "no such job", 404)
    with pytest.raises(SesExportJobNotFoundError, match="job-1"):
        make_sensor(hook).poke({})


@pytest.mark.parametrize(("code", "status"), [("TooManyRequestsException", 429), ("ServiceUnavailable", 503)])
def test_transient_errors_are_not_done(hook: SesExportJobHook, stubber: Stubber, code: str, status: int) -> None:
    stubber.add_client_error("get_export_job", code, "try later", status)
    assert make_sensor(hook).poke({}) is False


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ],
)
def test_network_errors_are_not_done(hook: SesExportJobHook, exc: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: Any) -> Any:
        raise exc

    monkeypatch.setattr(hook.conn, "get_export_job", boom)
    assert make_sensor(hook).poke({}) is False


def test_bad_request_is_an_error(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "BadRequestException", "bad id", 400)
    with pytest.raises(SesExportJobError, match="bad id"):
        make_sensor(hook).poke({})


@pytest.mark.parametrize("bad", [None, "", "  ", "None", 7, {"JobId": "x"}])
def test_bad_job_id_before_any_request(hook: SesExportJobHook, stubber: Stubber, bad: Any) -> None:
    with pytest.raises(SesExportInputError) as err:
        make_sensor(hook, job_id=bad).poke({})
    message = str(err.value)
    assert "job_id" in message
    assert repr(bad) in message
    assert "upstream XCom" in message
    assert isinstance(err.value, AirflowFailException)


def test_completed_without_statistics(hook: SesExportJobHook, stubber: Stubber) -> None:
    response = job_response("COMPLETED")
    del response["Statistics"]
    stubber.add_response("get_export_job", response, {"JobId": "job-1"})
    result = make_sensor(hook).poke({})
    assert result.xcom_value["statistics"] == {"ProcessedRecordsCount": None, "ExportedRecordsCount": None}


def test_poke_logs_one_line_without_url(
    hook: SesExportJobHook, stubber: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
    sensor = make_sensor(hook)
    lines: list[str] = []
    monkeypatch.setattr(sensor.log, "info", lambda msg, *a, **k: lines.append(msg % a))
    sensor.poke({})
    poll_lines = [line for line in lines if "status" in line]
    assert len(poll_lines) == 1
    assert "job-1" in poll_lines[0] and "COMPLETED" in poll_lines[0] and "since creation" in poll_lines[0]
    assert PRESIGNED not in " ".join(lines)
