"""
Fault table, reschedule-mode rows: the sensor (and the result operator behind it) in a real Airflow run.

Each row runs ``wait >> result`` with ``dag.test()`` against the emulator on 127.0.0.1 while a fault
is injected during the wait. Durations in names and comments are nominal seconds; the run is scaled
by ``SCALE`` (see ``conftest.py``): a 60 s throttle storm lasts 3 s of wall clock, botocore's backoff
and the poke interval (nominal 5 s) shrink by the same factor, so the storm still outlasts several
whole pokes (each of up to 5 botocore attempts) exactly as it would in production.

"No failed try" is asserted as ``try_number == 1`` with ``retries=2`` configured: a poke that failed
would have been retried and shown up as try 2 or 3.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.utils.aws_errors import is_transient
from tests.reliability.conftest import SCALE, ExceptionSpy, FaultWindow, nominal
from tests.reliability.helpers import create_job, gate_dag, state_of

pytestmark = [
    pytest.mark.e2e,
    # jobs run CREATED 1 s + PROCESSING 40 s nominal, at the same scale as everything else
    pytest.mark.ses_export_emulator(time_scale=SCALE, processing_seconds=40, create_rate_limit=None),
]


def _assert_gate_succeeded_first_try(dr: Any, job_id: str) -> None:
    wait, result = dr.get_task_instance("wait"), dr.get_task_instance("result")
    assert (state_of(wait), state_of(result)) == ("success", "success")
    assert wait.try_number == 1, "the wait spent a retry: a poke failed"
    assert result.try_number == 1
    summary = wait.xcom_pull(task_ids="wait")
    assert summary["job_id"] == job_id and summary["job_status"] == "COMPLETED"
    assert result.xcom_pull(task_ids="result", key="job_status") == "COMPLETED"


def _get_stats(emu: Any) -> dict[str, int]:
    return emu.stats()["operations"]["GetExportJob"]


def _held_job(emu: Any) -> str:
    """A job that stays PROCESSING until the test completes it (when the faults lift)."""
    emu.add_rule(action="hang", count=1)
    job_id = create_job(emu)
    emu.reset_stats()
    return job_id


def _failed_pokes(spy: ExceptionSpy) -> int:
    """Pokes whose GetExportJob failed even after botocore's retries (the sensor must shrug them off)."""
    return len([exc for exc in spy.raised if is_transient(exc)])


@pytest.mark.parametrize("storm", [10, 60])
def test_throttle_storm_during_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    storm: int,
) -> None:
    """Every call 429 for `storm` s while the job runs; the job completes as the storm ends: no try fails."""
    job_id = _held_job(ses_export_emulator)
    exception_spy.wrap(monkeypatch, SesExportJobHook, "get_export_job")
    fault_window.open_at_poll(
        monkeypatch, nominal(storm), storm="throttle", then=lambda: ses_export_emulator.complete_job(job_id)
    )
    dr = run_dag(gate_dag(dag_id, job_id))
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    assert _get_stats(ses_export_emulator)["throttled"] >= 1
    if storm == 60:
        # the storm outlasted botocore's 5 attempts: at least one whole poke failed, and the sensor went on
        assert _failed_pokes(exception_spy) >= 1


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_burst_during_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    status: int,
) -> None:
    """Every call answered `status` for 60 s: no try fails."""
    job_id = _held_job(ses_export_emulator)
    exception_spy.wrap(monkeypatch, SesExportJobHook, "get_export_job")
    fault_window.open_at_poll(
        monkeypatch,
        nominal(60),
        storm=f"fail_{status}",
        then=lambda: ses_export_emulator.complete_job(job_id),
    )

    dr = run_dag(gate_dag(dag_id, job_id))
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    assert _get_stats(ses_export_emulator)["server_errors"] > 5
    assert _failed_pokes(exception_spy) >= 1


def test_connection_resets_during_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
) -> None:
    """Every connection reset without a response for 40 s: no try fails."""
    job_id = _held_job(ses_export_emulator)
    exception_spy.wrap(monkeypatch, SesExportJobHook, "get_export_job")
    fault_window.open_at_poll(
        monkeypatch, nominal(40), then=lambda: ses_export_emulator.complete_job(job_id), reset_rate=1.0
    )
    dr = run_dag(gate_dag(dag_id, job_id))
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    assert _get_stats(ses_export_emulator)["resets"] >= 5
    assert _failed_pokes(exception_spy) >= 1


def test_added_latency_longer_than_botocore_timeouts(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    30 s added to every call for 60 s, botocore read timeout 10 s: reads time out, are retried, no try fails.

    Scaled: latency 1.5 s, read_timeout 0.5 s, connect_timeout 0.25 s, window 3 s.
    """
    from botocore.endpoint import Endpoint

    job_id = _held_job(ses_export_emulator)
    attempts: list[Any] = []  # every HTTP attempt's outcome, botocore's own retries included
    do_get_response = Endpoint._do_get_response

    def spy(endpoint: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            outcome = do_get_response(endpoint, *args, **kwargs)
        except Exception as exc:
            attempts.append(exc)
            raise
        attempts.append(outcome[1] if outcome[0] is None else outcome[0])
        return outcome

    monkeypatch.setattr(Endpoint, "_do_get_response", spy)
    fault_window.open_at_poll(
        monkeypatch, nominal(60), then=lambda: ses_export_emulator.complete_job(job_id), latency=nominal(30)
    )
    config = {"read_timeout": nominal(10), "connect_timeout": nominal(5)}
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs={"botocore_config": config}))
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    timeouts = [exc for exc in attempts if isinstance(exc, ReadTimeoutError)]
    assert len(timeouts) >= 2, "attempts did not run into the read timeout: the row did not test what it claims"


def test_job_disappears_mid_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
) -> None:
    """The job is deleted while the sensor waits (404): a clear SesExportJobNotFoundError fails the wait."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    exception_spy.wrap(monkeypatch, SesExportJobSensor, "poke")
    fault_window.after_first_poll(nominal(20), lambda: ses_export_emulator.delete_job(job_id))
    dr = run_dag(gate_dag(dag_id, job_id, with_result=False, sensor_kwargs={"retries": 0}))
    assert state_of(dr.get_task_instance("wait")) == "failed"
    (err,) = exception_spy.of_type(SesExportJobNotFoundError)
    assert err.job_id == job_id
    assert job_id in str(err) and "not found" in str(err)
    assert _get_stats(ses_export_emulator)["client_errors"] == 1  # one 404: not retried by botocore


@pytest.mark.parametrize("soft_fail", [False, True])
@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
def test_failed_or_cancelled_job_fails_typed_without_retries(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    outcome: str,
    soft_fail: bool,
) -> None:
    """FAILED / CANCELLED mid-wait: typed error, AWS's message, try 1 of 3, failed (not skipped) even with soft_fail."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    message = "Access denied to the VDM data for this account"
    if outcome == "FAILED":
        fault_window.after_first_poll(nominal(10), lambda: ses_export_emulator.fail_job(job_id, message))
    else:
        fault_window.after_first_poll(nominal(10), lambda: ses_export_emulator.client().cancel_export_job(JobId=job_id))
    exception_spy.wrap(monkeypatch, SesExportJobSensor, "poke")
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs={"soft_fail": soft_fail}))
    wait = dr.get_task_instance("wait")
    assert state_of(wait) == "failed"
    assert wait.try_number == 1, "a failed/cancelled job must not spend retries"
    assert state_of(dr.get_task_instance("result")) == "upstream_failed"
    expected = SesExportJobFailedError if outcome == "FAILED" else SesExportJobCancelledError
    (err,) = exception_spy.of_type(expected)
    assert err.job_id == job_id and err.job_status == outcome
    if outcome == "FAILED":
        assert err.error_message == message and message in str(err)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_timeout_skips_only_with_soft_fail(
    ses_export_emulator: Any, run_dag: Any, dag_id: str, soft_fail: bool
) -> None:
    """A job that never finishes: the sensor times out (no retries); soft_fail turns that (only that) into a skip."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs={"timeout": nominal(20), "soft_fail": soft_fail}))
    wait = dr.get_task_instance("wait")
    assert state_of(wait) == ("skipped" if soft_fail else "failed")
    assert wait.try_number == 1


@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
def test_result_operator_on_failed_job_fails_without_retries(
    ses_export_emulator: Any,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    outcome: str,
) -> None:
    """The result operator alone on a FAILED / CANCELLED job: typed error, AWS's message, no retries spent."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    if outcome == "FAILED":
        ses_export_emulator.fail_job(job_id, "Export job failed: quota")
    else:
        ses_export_emulator.client().cancel_export_job(JobId=job_id)
    exception_spy.wrap(monkeypatch, SesExportJobResultOperator, "execute")
    from airflow_provider_sesexport._compat import DAG
    from tests.reliability.helpers import START

    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesExportJobResultOperator(task_id="result", job_id=job_id, retries=2)
    dr = run_dag(dag)
    result = dr.get_task_instance("result")
    assert state_of(result) == "failed" and result.try_number == 1
    expected = SesExportJobFailedError if outcome == "FAILED" else SesExportJobCancelledError
    (err,) = exception_spy.of_type(expected)
    if outcome == "FAILED":
        assert "Export job failed: quota" in str(err)
