from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowFailException
from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
from airflow_provider_sesexport.utils.validation import SesExportInputError
from tests.unit.responses import PRESIGNED, job_response


def run(hook: SesExportJobHook, job_id: Any = "job-1") -> tuple[Any, dict[str, Any]]:
    op = SesExportJobResultOperator(task_id="result", job_id=job_id)
    op.__dict__["hook"] = hook
    ti = mock.MagicMock()
    pushed: dict[str, Any] = {}
    ti.xcom_push.side_effect = lambda key, value, **_: pushed.__setitem__(key, value)
    return op.execute({"ti": ti}), pushed


def test_completed_pushes_every_key(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
    summary, pushed = run(hook)
    assert pushed["statistics"] == {"ProcessedRecordsCount": 12, "ExportedRecordsCount": 10}
    assert pushed["s3_url"] == PRESIGNED
    assert pushed["s3_url_expires_at"] == "2026-11-01T06:35:00+00:00"
    assert pushed["job_id"] == "job-1" and pushed["job_status"] == "COMPLETED"
    assert summary["s3_url_expires_at"] == pushed["s3_url_expires_at"]
    json.dumps(summary)
    json.dumps(pushed)
    assert PRESIGNED not in json.dumps(summary)


def test_missing_counts_are_null(hook: SesExportJobHook, stubber: Stubber) -> None:
    response = job_response("COMPLETED", Statistics={"ExportedRecordsCount": 3})
    stubber.add_response("get_export_job", response, {"JobId": "job-1"})
    _, pushed = run(hook)
    assert pushed["statistics"] == {"ProcessedRecordsCount": None, "ExportedRecordsCount": 3}


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING"])
def test_unfinished_job_is_an_error(hook: SesExportJobHook, stubber: Stubber, status: str) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(SesExportJobError, match="SesExportJobSensor") as err:
        run(hook)
    assert status in str(err.value)


@pytest.mark.parametrize(
    ("status", "error"), [("FAILED", SesExportJobFailedError), ("CANCELLED", SesExportJobCancelledError)]
)
def test_failures_raise_like_the_sensor(hook: SesExportJobHook, stubber: Stubber, status: str, error: type) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(error) as err:
        run(hook)
    assert isinstance(err.value, AirflowFailException)


def test_not_found(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "NotFoundException", "gone", 404)
    with pytest.raises(SesExportJobNotFoundError):
        run(hook)


@pytest.mark.parametrize("bad", [None, "", "\t", "None", 3.5])
def test_bad_job_id(hook: SesExportJobHook, stubber: Stubber, bad: Any) -> None:
    with pytest.raises(SesExportInputError, match="job_id"):
        run(hook, job_id=bad)


def test_template_fields() -> None:
    assert "job_id" in SesExportJobResultOperator.template_fields
