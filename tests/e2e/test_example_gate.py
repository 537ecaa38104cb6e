"""The gate example DAG, run by a real Airflow against the emulator over HTTP (reschedule mode)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.conftest import task_states
from tests.e2e.conftest import create_job, try_number, xcom


@pytest.fixture
def gate_dag(load_example_dag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "1")
    return load_example_dag("example_ses_export_gate")


def records_in(body: bytes, data_format: str) -> int:
    """The records of an emulator metrics export, counted independently of the provider's reader."""
    if data_format == "CSV":  # a header line, then one record per line, no field spanning lines
        return len(body.decode("utf-8").splitlines()) - 1
    return len(json.loads(body))  # a JSON array


@pytest.mark.e2e
@pytest.mark.reschedule_in_dag_test
# the emulator's default: real SES's Statistics (ProcessedRecordsCount only)
@pytest.mark.ses_export_emulator(time_scale=0.05)
@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
def test_gate_dag_waits_then_pushes_results(
    gate_dag: Any, run_dag: Any, ses_export_emulator: Any, task_logs: Any, data_format: str
) -> None:
    ses_export_emulator.add_rule(action="hang", count=1)
    job_id = create_job(ses_export_emulator, data_format)
    ses_export_emulator.advance_after(job_id, reads=3)  # three PROCESSING pokes, COMPLETED at the fourth

    dr = run_dag(gate_dag, run_conf={"job_id": job_id})

    assert task_states(dr) == {"wait_for_export": "success", "export_result": "success", "report": "success"}
    job = ses_export_emulator.client().get_export_job(JobId=job_id)
    assert "ExportedRecordsCount" not in job["Statistics"]
    processed = job["Statistics"]["ProcessedRecordsCount"]
    assert xcom(dr, "export_result", "statistics") == {"ProcessedRecordsCount": processed, "ExportedRecordsCount": None}
    assert xcom(dr, "export_result", "job_status") == "COMPLETED"
    assert xcom(dr, "export_result", "s3_url").startswith(ses_export_emulator.endpoint_url)
    summary = xcom(dr, "wait_for_export")
    assert summary["job_id"] == job_id
    assert summary["job_status"] == "COMPLETED"
    assert summary["data_format"] == data_format
    # The report counted the file's records itself (SES's count is of messages examined, not rows written).
    with urllib.request.urlopen(job["ExportDestination"]["S3Url"], timeout=30) as response:
        expected = records_in(response.read(), data_format)
    assert expected > 0
    assert xcom(dr, "report") == {"records": expected, "processed_records": processed}
    # Reschedule mode: several pokes, one try, and one log line per poke.
    out = task_logs()
    assert out.count(f"SES export job {job_id}: status PROCESSING") >= 2
    assert f"SES export job {job_id}: status COMPLETED" in out
    assert try_number(dr, "wait_for_export") == 1
    assert "X-Amz-Signature=" not in out


@pytest.mark.e2e
def test_gate_dag_refuses_a_run_without_a_job_id(gate_dag: Any, run_dag: Any) -> None:
    """The trigger dialog's defaults without a job id: refused when the run is created, naming the param (no run
    that fails later on an empty job id)."""
    with pytest.raises(Exception, match="job_id") as raised:
        run_dag(gate_dag)
    # Airflow's ParamValidationError; Airflow 3.2's dag.test() raises it as a ValueError with the same message
    assert type(raised.value).__name__ in ("ParamValidationError", "ValueError")
