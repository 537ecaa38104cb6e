"""The sensor's failure, cancel, not-found, throttling and bad-input paths in a real Airflow (reschedule mode)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from tests.airflow_names import DAG
from tests.conftest import task_states
from tests.e2e.conftest import create_job, try_number


def sensor_dag(dag_id: str, job_id: str, **sensor_kwargs: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        SesExportJobSensor(
            task_id="wait",
            job_id=job_id,
            poke_interval=sensor_kwargs.pop("poke_interval", 1),
            timeout=sensor_kwargs.pop("timeout", 60),
            retries=sensor_kwargs.pop("retries", 2),
            retry_delay=dt.timedelta(seconds=0),
            **sensor_kwargs,
        )
    return dag


@pytest.mark.e2e
@pytest.mark.ses_export_emulator(time_scale=0.2)
def test_failed_job_fails_without_retries(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    ses_export_emulator.fail_next(1, message="Metrics are not available for this identity")
    job_id = create_job(ses_export_emulator)

    dr = run_dag(sensor_dag("e2e_sensor_failed", job_id))

    assert task_states(dr) == {"wait": "failed"}
    assert try_number(dr, "wait") == 1  # AirflowFailException: retries=2 were not spent
    out = task_logs()
    assert "SesExportJobFailedError" in out
    assert "Metrics are not available for this identity" in out
    assert job_id in out


@pytest.mark.e2e
@pytest.mark.ses_export_emulator(time_scale=5)
def test_cancelled_job_fails_without_retries(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    job_id = create_job(ses_export_emulator)
    ses_export_emulator.client().cancel_export_job(JobId=job_id)

    dr = run_dag(sensor_dag("e2e_sensor_cancelled", job_id))

    assert task_states(dr) == {"wait": "failed"}
    assert try_number(dr, "wait") == 1
    assert "SesExportJobCancelledError" in task_logs()


@pytest.mark.e2e
def test_unknown_job_is_not_found(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    dr = run_dag(sensor_dag("e2e_sensor_not_found", "no-such-job", retries=0))

    assert task_states(dr) == {"wait": "failed"}
    out = task_logs()
    assert "SesExportJobNotFoundError" in out
    assert "no-such-job" in out


@pytest.mark.e2e
@pytest.mark.ses_export_emulator(time_scale=0.2, region="eu-south-2")
@pytest.mark.parametrize("deferrable", [False, True], ids=["reschedule", "deferrable"])
def test_not_found_names_the_connection_and_region_it_looked_in(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    """
    The error table (docs/failure_semantics.md): the error names the connection id and the region (from the
    connection) values.
    """
    monkeypatch.setenv("AIRFLOW_CONN_SES_EXPORTS_PROBE_7F3A", ses_export_emulator.airflow_conn_json())
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the region comes from the connection only
    dag = sensor_dag(
        f"e2e_sensor_not_found_where_{deferrable}",
        "no-such-job-4c1d",
        retries=0,
        aws_conn_id="ses_exports_probe_7f3a",
        deferrable=deferrable,
    )
    dr = run_dag(dag)

    assert task_states(dr) == {"wait": "failed"}
    out = task_logs()
    assert "SesExportJobNotFoundError" in out
    assert "SES export job 'no-such-job-4c1d' was not found in region 'eu-south-2'" in out
    assert "connection aws_conn_id='ses_exports_probe_7f3a'" in out


@pytest.mark.e2e
@pytest.mark.ses_export_emulator(time_scale=0.2)
@pytest.mark.parametrize(
    ("max_attempts", "throttled"),
    [
        pytest.param(None, 2, id="botocore-retries"),
        pytest.param(1, 3, id="no-botocore-retries", marks=pytest.mark.reschedule_in_dag_test),
    ],
)
def test_throttling_storm_does_not_fail_the_wait(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, max_attempts: int | None, throttled: int
) -> None:
    """
    The sensor's first ``throttled`` GetExportJob calls answer 429, however long the run takes to reach them.

    With botocore's retries (5 attempts) the first poke absorbs them and never sees the error; with one
    attempt, each of the first pokes reports "not done" and the next one goes on.
    """
    job_id = create_job(ses_export_emulator)
    ses_export_emulator.throttle_next(throttled, "GetExportJob")
    config = {"retries": {"mode": "standard", "total_max_attempts": max_attempts}} if max_attempts else None

    dr = run_dag(sensor_dag(f"e2e_sensor_throttled_{max_attempts}", job_id, retries=0, botocore_config=config))

    assert task_states(dr) == {"wait": "success"}
    assert try_number(dr, "wait") == 1
    assert ses_export_emulator.stats()["operations"]["GetExportJob"]["throttled"] == throttled
    out = task_logs()
    if max_attempts == 1:  # nothing left to retry inside botocore: the poke itself reports "not done"
        assert out.count("TooManyRequestsException") >= throttled
    else:
        assert "TooManyRequestsException" not in out


@pytest.mark.e2e
@pytest.mark.parametrize("bad", ["", "None", "   "])
def test_bad_job_id_fails_before_any_request(run_dag: Any, ses_export_emulator: Any, task_logs: Any, bad: str) -> None:
    dr = run_dag(sensor_dag("e2e_sensor_bad_input", bad))

    assert task_states(dr) == {"wait": "failed"}
    assert try_number(dr, "wait") == 1
    assert ses_export_emulator.stats()["operations"]["GetExportJob"]["requests"] == 0
    assert "Invalid job_id" in task_logs()


@pytest.mark.e2e
@pytest.mark.ses_export_emulator(time_scale=0.2)
def test_soft_fail_does_not_skip_a_failed_job(run_dag: Any, ses_export_emulator: Any) -> None:
    ses_export_emulator.fail_next(1)
    job_id = create_job(ses_export_emulator)

    dr = run_dag(sensor_dag("e2e_sensor_soft_fail_failed", job_id, soft_fail=True))

    assert task_states(dr) == {"wait": "failed"}


@pytest.mark.e2e
@pytest.mark.reschedule_in_dag_test
@pytest.mark.ses_export_emulator(time_scale=100)
def test_soft_fail_skips_on_timeout(run_dag: Any, ses_export_emulator: Any) -> None:
    job_id = create_job(ses_export_emulator)

    dr = run_dag(sensor_dag("e2e_sensor_soft_fail_timeout", job_id, soft_fail=True, timeout=1))

    assert task_states(dr) == {"wait": "skipped"}
