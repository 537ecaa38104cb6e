"""
Fault table, sensor rows: the sensor in reschedule and in deferrable mode (and the result operator behind it),
in a real Airflow run.

Each row runs ``wait >> result`` with ``dag.test()`` against the emulator on 127.0.0.1 while a fault
is injected during the wait. Durations in names and comments are nominal seconds; the run is scaled
by ``SCALE`` (see ``conftest.py``): a 60 s throttle storm lasts 3 s of wall clock, botocore's backoff
and the poke interval (nominal 5 s) shrink by the same factor, so the storm still outlasts several
whole pokes (each of up to 5 botocore attempts) exactly as it would in production.

In deferrable mode the sensor pokes once, then hands the wait to ``SesExportJobTrigger``, which
``dag.test()`` runs in-process; the trigger's shared poller lists jobs (ListExportJobs) and reads the
finished ones (GetExportJob), so faults open at the trigger's first call.

"No failed try" is asserted as ``try_number == 1`` with ``retries=2`` configured: a poke that failed
would have been retried and shown up as try 2 or 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    """Counters of the status calls (GetExportJob, plus the trigger's ListExportJobs), summed."""
    ops = emu.stats()["operations"]
    return {key: ops["GetExportJob"][key] + ops["ListExportJobs"][key] for key in ops["GetExportJob"]}


def _held_job(emu: Any) -> str:
    """A job that stays PROCESSING until the test completes it (when the faults lift)."""
    emu.add_rule(action="hang", count=1)
    job_id = create_job(emu)
    emu.reset_stats()
    return job_id


MODES = ["reschedule", "deferrable"]
#: the same, for rows whose reschedule-mode wait is rescheduled (deselected on Airflow 3.0.x, see tests/conftest.py)
RESCHEDULED_MODES = [pytest.param("reschedule", marks=pytest.mark.reschedule_in_dag_test), "deferrable"]


def _watch_failed_polls(monkeypatch: pytest.MonkeyPatch, spy: ExceptionSpy, mode: str) -> Callable[[], int]:
    """
    Count whole polls that failed after botocore's retries (the wait must shrug them off).

    Reschedule: GetExportJob raising out of the hook. Deferrable: the trigger poller's cycles that hit a
    transient error (``ExportJobPoller._slow_down``).
    """
    if mode == "reschedule":
        spy.wrap(monkeypatch, SesExportJobHook, "get_export_job")
        return lambda: len([exc for exc in spy.raised if is_transient(exc)])
    from airflow_provider_sesexport.triggers.poller import ExportJobPoller

    slowed: list[BaseException] = []
    original = ExportJobPoller._slow_down

    def _slow_down(poller: Any, exc: BaseException) -> None:
        slowed.append(exc)
        original(poller, exc)

    monkeypatch.setattr(ExportJobPoller, "_slow_down", _slow_down)
    return lambda: len([exc for exc in slowed if is_transient(exc)])


def _spy_wait_errors(monkeypatch: pytest.MonkeyPatch, spy: ExceptionSpy) -> None:
    """Record what the sensor raises, in either mode (deferrable raises from ``execute_complete``)."""
    spy.wrap(monkeypatch, SesExportJobSensor, "poke")
    spy.wrap(monkeypatch, SesExportJobSensor, "execute_complete")


def _assert_mode_used(emu: Any, mode: str) -> None:
    """The wait really ran in ``mode``: only the trigger's poller calls ListExportJobs."""
    listed = emu.stats()["operations"]["ListExportJobs"]["requests"]
    assert (listed > 0) == (mode == "deferrable"), f"{mode} wait made {listed} ListExportJobs calls"


def _sensor(mode: str, **kwargs: Any) -> dict[str, Any]:
    return {"deferrable": mode == "deferrable", **kwargs}


@dataclass(frozen=True)
class Fault:
    """
    One row of the fault table: what every status call meets for ``seconds`` (nominal) while the job runs.

    :param seconds: how long the fault lasts; the job completes as it lifts.
    :param window: :meth:`FaultWindow.open_at_poll`'s fault arguments.
    :param seen: the emulator counters that show the fault was served, and their least sum.
    :param whole_poll_fails: the fault outlasts botocore's retries: at least one whole poll fails, and the wait
        goes on.
    :param outlast: keep the fault on past ``seconds`` until a whole poll has failed (a loaded machine's slow reset
        attempts could otherwise let botocore's retries outlast the scaled window).
    """

    seconds: float
    window: dict[str, Any]
    seen: tuple[tuple[str, ...], int]
    whole_poll_fails: bool = False
    outlast: bool = False


FAULTS = {
    # botocore's retries inside the first poke usually outlast a 10 s storm; on a slow machine the sensor reschedules
    "throttle_10s": Fault(10, {"storm": "throttle"}, (("throttled",), 1)),
    "throttle_60s": Fault(60, {"storm": "throttle"}, (("throttled",), 1), whole_poll_fails=True),
    "http_500_60s": Fault(60, {"storm": "fail_500"}, (("server_errors",), 6), whole_poll_fails=True),
    "http_503_60s": Fault(60, {"storm": "fail_503"}, (("server_errors",), 6), whole_poll_fails=True),
    # half the calls 503 and a fifth reset, interleaved with answers; the emulator's RNG is seeded (0), so the first
    # calls in the window hit faults
    "intermittent_503_and_resets_80s": Fault(
        80, {"error_rate": 0.5, "error_status": 503, "reset_rate": 0.2}, (("server_errors", "resets"), 1)
    ),
    # every connection reset without a response; the window outlasts the first whole failed poll
    "resets_40s": Fault(40, {"reset_rate": 1.0}, (("resets",), 5), whole_poll_fails=True, outlast=True),
}


@pytest.mark.parametrize("mode", RESCHEDULED_MODES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_transient_faults_during_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    fault: str,
    mode: str,
) -> None:
    """Throttling storms, 5xx bursts, resets and their mix during the wait: no try fails."""
    row = FAULTS[fault]
    job_id = _held_job(ses_export_emulator)
    failed_polls = _watch_failed_polls(monkeypatch, exception_spy, mode)
    fault_window.open_at_poll(
        monkeypatch,
        nominal(row.seconds),
        then=lambda: ses_export_emulator.complete_job(job_id),
        outlast=(lambda: failed_polls() >= 1) if row.outlast else None,
        **row.window,
    )
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs=_sensor(mode)))
    _assert_mode_used(ses_export_emulator, mode)
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    counters, least = row.seen
    stats = _get_stats(ses_export_emulator)
    assert sum(stats[counter] for counter in counters) >= least, stats
    if row.whole_poll_fails:  # the fault outlasted botocore's 5 attempts: the wait went on past a failed poll
        assert failed_polls() >= 1


@pytest.mark.parametrize("mode", RESCHEDULED_MODES)  # a slow machine pokes inside the window more than once
def test_added_latency_longer_than_botocore_timeouts(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
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
    from aiobotocore.endpoint import AioEndpoint

    async_do_get_response = AioEndpoint._do_get_response

    async def async_spy(endpoint: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            outcome = await async_do_get_response(endpoint, *args, **kwargs)
        except Exception as exc:
            attempts.append(exc)
            raise
        attempts.append(outcome[1] if outcome[0] is None else outcome[0])
        return outcome

    monkeypatch.setattr(AioEndpoint, "_do_get_response", async_spy)
    fault_window.open_at_poll(
        monkeypatch, nominal(60), then=lambda: ses_export_emulator.complete_job(job_id), latency=nominal(30)
    )
    config = {"read_timeout": nominal(10), "connect_timeout": nominal(5)}
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs=_sensor(mode, botocore_config=config)))
    _assert_mode_used(ses_export_emulator, mode)
    assert fault_window.lifted.is_set()
    _assert_gate_succeeded_first_try(dr, job_id)
    timeouts = [exc for exc in attempts if isinstance(exc, ReadTimeoutError)]
    assert len(timeouts) >= 2, "attempts did not run into the read timeout: the row did not test what it claims"


@pytest.mark.parametrize("mode", MODES)
def test_job_disappears_mid_wait(
    ses_export_emulator: Any,
    fault_window: FaultWindow,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    mode: str,
) -> None:
    """The job is deleted while the sensor waits (404): a clear SesExportJobNotFoundError fails the wait."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    _spy_wait_errors(monkeypatch, exception_spy)
    fault_window.after_first_poll(nominal(20), lambda: ses_export_emulator.delete_job(job_id))
    dr = run_dag(gate_dag(dag_id, job_id, with_result=False, sensor_kwargs=_sensor(mode, retries=0)))
    _assert_mode_used(ses_export_emulator, mode)
    assert state_of(dr.get_task_instance("wait")) == "failed"
    (err,) = exception_spy.of_type(SesExportJobNotFoundError)
    assert err.job_id == job_id
    assert job_id in str(err) and "not found" in str(err)
    assert _get_stats(ses_export_emulator)["client_errors"] == 1  # one 404: not retried by botocore


@pytest.mark.parametrize("mode", MODES)
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
    mode: str,
) -> None:
    """FAILED / CANCELLED mid-wait: typed error, AWS's message, try 1 of 3, failed (not skipped) even with soft_fail."""
    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    message = "Access denied to the VDM data for this account"
    if outcome == "FAILED":
        fault_window.after_first_poll(nominal(10), lambda: ses_export_emulator.fail_job(job_id, message))
    else:
        fault_window.after_first_poll(nominal(10), lambda: ses_export_emulator.client().cancel_export_job(JobId=job_id))
    _spy_wait_errors(monkeypatch, exception_spy)
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs=_sensor(mode, soft_fail=soft_fail)))
    _assert_mode_used(ses_export_emulator, mode)
    wait = dr.get_task_instance("wait")
    assert state_of(wait) == "failed"
    assert wait.try_number == 1, "a failed/cancelled job must not spend retries"
    assert state_of(dr.get_task_instance("result")) == "upstream_failed"
    expected: type[SesExportJobFailedError | SesExportJobCancelledError] = (
        SesExportJobFailedError if outcome == "FAILED" else SesExportJobCancelledError
    )
    (err,) = exception_spy.of_type(expected)
    assert err.job_id == job_id and err.job_status == outcome
    if outcome == "FAILED":
        assert err.error_message == message and message in str(err)


@pytest.mark.parametrize("mode", RESCHEDULED_MODES)
@pytest.mark.parametrize("soft_fail", [False, True])
def test_timeout_skips_only_with_soft_fail(
    ses_export_emulator: Any,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
    exception_spy: ExceptionSpy,
    soft_fail: bool,
    mode: str,
) -> None:
    """A job that never finishes: the sensor times out (no retries); soft_fail turns that (only that) into a skip."""
    from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger

    ses_export_emulator.add_rule(action="hang")
    job_id = create_job(ses_export_emulator)
    _spy_wait_errors(monkeypatch, exception_spy)
    triggers: list[str] = []
    run = SesExportJobTrigger.run

    def counted_run(trigger: SesExportJobTrigger) -> Any:
        triggers.append(trigger.job_id)
        return run(trigger)

    monkeypatch.setattr(SesExportJobTrigger, "run", counted_run)
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs=_sensor(mode, timeout=nominal(20), soft_fail=soft_fail)))
    # not _assert_mode_used: under load the trigger may start after the (scaled, 1 s) deadline and end the
    # wait before its first ListExportJobs; that it ran at all is what shows the deferrable path was taken
    assert triggers == ([job_id] if mode == "deferrable" else [])
    wait = dr.get_task_instance("wait")
    raised = [f"{type(exc).__name__}: {exc}" for exc in exception_spy.raised]
    assert state_of(wait) == ("skipped" if soft_fail else "failed"), raised
    assert wait.try_number == 1, raised


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
    from tests.airflow_names import DAG
    from tests.reliability.helpers import START

    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesExportJobResultOperator(task_id="result", job_id=job_id, retries=2)
    dr = run_dag(dag)
    result = dr.get_task_instance("result")
    assert state_of(result) == "failed" and result.try_number == 1
    expected: type[SesExportJobFailedError | SesExportJobCancelledError] = (
        SesExportJobFailedError if outcome == "FAILED" else SesExportJobCancelledError
    )
    (err,) = exception_spy.of_type(expected)
    if outcome == "FAILED":
        assert "Export job failed: quota" in str(err)


@pytest.mark.parametrize(
    "mode",
    [
        "reschedule",
        "deferrable",
    ],
)
def test_unusable_job_id_fails_even_with_soft_fail(
    ses_export_emulator: Any, run_dag: Any, dag_id: str, mode: str
) -> None:
    """job_id rendered as "None" (the upstream XCom did not arrive): fail, no retries, no skip, no request."""
    dr = run_dag(gate_dag(dag_id, "None", with_result=False, sensor_kwargs=_sensor(mode, soft_fail=True)))
    wait = dr.get_task_instance("wait")
    assert ses_export_emulator.stats()["total_requests"] == 0
    assert (state_of(wait), wait.try_number) == ("failed", 1)
