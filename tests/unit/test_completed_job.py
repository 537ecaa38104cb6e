"""One rule for "the job must be COMPLETED": the result operator, the copy and the loader raise the hook's error."""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import SesExportJobError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator
from tests.unit.responses import job_response


def _result(hook: SesExportJobHook) -> None:
    op = SesExportJobResultOperator(task_id="result", job_id="job-1")
    op.__dict__["hook"] = hook
    op.execute({"ti": mock.MagicMock()})  # type: ignore[arg-type]


def _copy(hook: SesExportJobHook) -> None:
    op = SesExportToS3Operator(task_id="copy", job_id="job-1", s3_bucket="my-bucket", s3_key="x.csv", replace=True)
    op.__dict__["hook"] = hook
    op.__dict__["dest_hook"] = mock.Mock()
    op.execute({"ti": mock.MagicMock()})  # type: ignore[arg-type]


def _load(hook: SesExportJobHook) -> None:
    op = SesExportToSqlOperator(task_id="load", job_id="job-1", table="t", sql_conn_id="db")
    op.__dict__["hook"] = hook
    connection = mock.Mock(conn_type="sqlite", get_hook=mock.Mock(return_value=mock.Mock()))
    with mock.patch("airflow_provider_sesexport.transfers.ses_export_to_sql.get_connection", return_value=connection):
        op.execute({"ti": mock.MagicMock()})  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING"])
@pytest.mark.parametrize("run", [_result, _copy, _load], ids=["result", "copy", "load"])
def test_an_unfinished_job_gets_the_one_error(
    hook: SesExportJobHook, stubber: Stubber, status: str, run: Callable[[SesExportJobHook], None]
) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(SesExportJobError) as err:
        run(hook)
    assert type(err.value) is SesExportJobError
    assert str(err.value) == (
        f"SES export job 'job-1' has not finished (status {status}): put SesExportJobSensor upstream of this "
        "task so it runs once the job is COMPLETED."
    )
