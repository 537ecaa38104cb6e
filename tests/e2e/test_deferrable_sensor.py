"""SesExportJobSensor(deferrable=True) in a real Airflow: dag.test() runs the trigger in-process."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from tests.airflow_names import DAG
from tests.conftest import task_states
from tests.e2e.conftest import create_job, try_number, xcom

pytestmark = pytest.mark.e2e


def sensor_dag(dag_id: str, job_id: str, **kwargs: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        SesExportJobSensor(
            task_id="wait",
            job_id=job_id,
            deferrable=True,
            poke_interval=kwargs.pop("poke_interval", 1),
            timeout=kwargs.pop("timeout", 60),
            retries=kwargs.pop("retries", 2),
            retry_delay=dt.timedelta(seconds=0),
            **kwargs,
        )
    return dag


# the summary's ExportedRecordsCount is asserted: real SES leaves it out
@pytest.mark.ses_export_emulator(time_scale=0.05, exported_records_count=True)
def test_deferred_wait_completes_with_same_summary(run_dag: Any, ses_export_emulator: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)
    # the trigger polls with ListExportJobs: two poll cycles list the job PROCESSING, the third no longer does
    emu.advance_after(job_id, reads=2, count="list")

    dr = run_dag(sensor_dag("e2e_deferrable_sensor_ok", job_id))

    assert task_states(dr) == {"wait": "success"}
    summary = xcom(dr, "wait")
    assert summary["job_id"] == job_id
    assert summary["job_status"] == "COMPLETED"
    assert summary["statistics"]["ExportedRecordsCount"] is not None
    assert "X-Amz" not in str(summary)
    stats = emu.stats()["operations"]
    assert stats["ListExportJobs"]["succeeded"] >= 4  # the trigger polled in batches
    assert stats["GetExportJob"]["succeeded"] == 2  # first poke + the one job that left the lists


@pytest.mark.ses_export_emulator(time_scale=0.05)
def test_deferred_failure_fails_without_retries(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)
    emu.advance_after(job_id, reads=2, to="FAILED", message="No VDM data for this identity", count="list")

    dr = run_dag(sensor_dag("e2e_deferrable_sensor_failed", job_id, soft_fail=True))

    assert task_states(dr) == {"wait": "failed"}  # soft_fail skips on timeout only
    assert try_number(dr, "wait") == 1
    out = task_logs()
    assert "SesExportJobFailedError" in out
    assert "No VDM data for this identity" in out


@pytest.mark.ses_export_emulator(time_scale=0.05)
def test_deferred_timeout_with_soft_fail_skips(run_dag: Any, ses_export_emulator: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)

    dr = run_dag(sensor_dag("e2e_deferrable_sensor_timeout", job_id, timeout=1, soft_fail=True))

    assert task_states(dr) == {"wait": "skipped"}
