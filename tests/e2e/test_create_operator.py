"""SesCreateExportJobOperator in a real Airflow against the emulator: sync and deferrable waits, retries, restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
from botocore.config import Config

from airflow_provider_sesexport import _compat
from airflow_provider_sesexport.exceptions import SesExportJobError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators._create_export import create_in_free_slot
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from airflow_provider_sesexport.utils.validation import build_create_export_job_request
from tests.airflow_names import AIRFLOW_V_3, DAG, daily_data_interval_schedule
from tests.conftest import task_states
from tests.e2e.conftest import try_number, xcom

pytestmark = pytest.mark.e2e

try:  # Airflow 3.3+
    from airflow.sdk import ResumableJobMixin as _AirflowResumableJobMixin  # noqa: F401

    AIRFLOW_RESUMES_JOBS = True
except ImportError:
    AIRFLOW_RESUMES_JOBS = False

SOURCE: dict[str, Any] = {
    "MetricsDataSource": {
        "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": "{{ data_interval_start }}",
        "EndDate": "{{ data_interval_end }}",
    }
}
#: SOURCE with fixed dates, for operators run outside a DAG run.
DATED_SOURCE: dict[str, Any] = {
    "MetricsDataSource": {**SOURCE["MetricsDataSource"], "StartDate": "2026-10-01", "EndDate": "2026-10-02"}
}
INTERVAL_START = dt.datetime(2026, 10, 30, tzinfo=dt.timezone.utc)
#: dag.test() keyword for the run's logical date: the run covers the day before it.
AT = {"logical_date" if AIRFLOW_V_3 else "execution_date": INTERVAL_START + dt.timedelta(days=1)}


def create_dag(dag_id: str, **kwargs: Any) -> Any:
    schedule = daily_data_interval_schedule()  # one-day data intervals on Airflow 2 and 3 alike
    with DAG(dag_id=dag_id, schedule=schedule, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        SesCreateExportJobOperator(
            task_id="create",
            export_data_source=kwargs.pop("export_data_source", SOURCE),
            data_format=kwargs.pop("data_format", "JSON"),
            waiter_delay=kwargs.pop("waiter_delay", 1),
            waiter_max_attempts=kwargs.pop("waiter_max_attempts", 100),
            retry_delay=dt.timedelta(seconds=0),
            **kwargs,
        )
    return dag


@pytest.fixture(params=["task_state_store", "variables"])
def job_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the create task records its job: Airflow 3.3's task_state_store, or (below 3.3, and on 3.3 through
    ``_compat``) an Airflow Variable written through the running Airflow's own Variable API."""
    if request.param == "task_state_store" and not AIRFLOW_RESUMES_JOBS:
        pytest.skip("task_state_store exists from Airflow 3.3 on")
    if request.param == "variables":
        monkeypatch.setattr(_compat, "_AIRFLOW_RESUMES_JOBS", False)
    return str(request.param)


def job_variables() -> dict[str, str]:
    """Every job record Variable in the metadata DB."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Variable).filter(Variable.key.like(f"{_compat.JOB_RECORD_PREFIX}.%")).all()
        return {row.key: row.val for row in rows}


def recorded_job(context: Any) -> Any:
    """What the running task instance recorded, read back inside the task through the store it uses."""
    store = context.get("task_state_store") if AIRFLOW_RESUMES_JOBS and _compat._AIRFLOW_RESUMES_JOBS else None
    store = store or _compat.VariableTaskStore.of(context)
    return _compat.recorded_job_id(store.get(SesCreateExportJobOperator.external_id_key), context)


def only_job(emu: Any) -> dict[str, Any]:
    jobs = emu.jobs()
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_a_start_date_in_the_future_is_sent_and_logs_a_warning(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any
) -> None:
    """A run whose data interval has not begun (logical date ahead of the clock) creates its job, with a warning."""
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    ahead = {"logical_date" if AIRFLOW_V_3 else "execution_date": today + dt.timedelta(days=3)}
    dr = run_dag(create_dag("e2e_create_future", deferrable=False, wait_for_completion=False), **ahead)

    assert task_states(dr) == {"create": "success"}
    job = ses_export_emulator.client().get_export_job(JobId=xcom(dr, "create"))
    start = job["ExportDataSource"]["MetricsDataSource"]["StartDate"]
    assert start == today + dt.timedelta(days=2)
    out = task_logs()
    assert f"export_data_source.MetricsDataSource.StartDate={start.isoformat()} is in the future" in out


def test_sync_wait_creates_one_job_for_the_data_interval(run_dag: Any, ses_export_emulator: Any) -> None:
    dr = run_dag(create_dag("e2e_create_sync", deferrable=False), **AT)

    assert task_states(dr) == {"create": "success"}
    job_id = xcom(dr, "create")
    job = ses_export_emulator.client().get_export_job(JobId=job_id)
    source = job["ExportDataSource"]["MetricsDataSource"]
    assert source["StartDate"] == INTERVAL_START
    assert source["EndDate"] == INTERVAL_START + dt.timedelta(days=1)
    assert job["ExportDestination"]["DataFormat"] == "JSON"
    summary = xcom(dr, "create", key="export_job")
    assert summary["job_id"] == job_id and summary["job_status"] == "COMPLETED"
    assert "X-Amz" not in str(summary)
    assert ses_export_emulator.stats()["jobs_created"] == 1


def test_bad_source_fails_before_any_call(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    bad = {"MetricsDataSource": {**SOURCE["MetricsDataSource"], "Metrics": [{"Name": "SENT", "Aggregation": "VOLUME"}]}}
    dr = run_dag(create_dag("e2e_create_bad", export_data_source=bad, retries=2), **AT)

    assert task_states(dr) == {"create": "failed"}
    assert try_number(dr, "create") == 1
    assert "export_data_source.MetricsDataSource.Metrics[0].Name" in task_logs()
    assert ses_export_emulator.stats()["total_requests"] == 0


def test_retry_reuses_the_job_of_the_failed_try(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    # the first try gives up after 3 polls; complete the job only once the second try is looking at it
    emu.advance_after(reads=4)  # the job the DAG creates: COMPLETED from its fifth GetExportJob

    dr = run_dag(create_dag("e2e_create_retry", deferrable=False, waiter_max_attempts=3, retries=1))

    assert task_states(dr) == {"create": "success"}
    assert try_number(dr, "create") == 2
    assert emu.stats()["jobs_created"] == 1  # the retry did not start a second export
    job_id = xcom(dr, "create")
    assert job_id == only_job(emu)["JobId"]
    assert f"Reusing SES export job {job_id}" in task_logs()


def stored_job_id(dr: Any) -> Any:
    """The JobId Airflow keeps in its task_state_store for the create task (Airflow 3.3+), read from the metadata DB."""
    import json

    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(TaskStateStoreModel)
            .filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id="create", key="ses_export_job_id")
            .one_or_none()
        )
        return None if row is None else json.loads(row.value)["job_id"]


def test_retry_reuses_the_job_through_its_record(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, job_store: str
) -> None:
    """The retry reads the JobId its first try recorded (Airflow 3.3+: ResumableJobMixin and task_state_store; below:
    an Airflow Variable, gone once the task succeeded). Nothing is looked up by data source (no ListExportJobs)."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    emu.advance_after(reads=4)  # the first try gives up after 3 polls; the retry sees the job COMPLETED

    dr = run_dag(create_dag(f"e2e_create_resumable_{job_store}", deferrable=False, waiter_max_attempts=3, retries=1))

    assert task_states(dr) == {"create": "success"}
    assert try_number(dr, "create") == 2
    job_id = xcom(dr, "create")
    assert job_id == only_job(emu)["JobId"]
    assert emu.stats()["operations"]["ListExportJobs"]["requests"] == 0
    if job_store == "task_state_store":
        assert stored_job_id(dr) == job_id
        assert "Reconnecting to existing job" in task_logs()  # ResumableJobMixin's decision
    else:
        assert f"Reconnecting to job {job_id} (PROCESSING), which an earlier try of this task started" in task_logs()
        assert job_variables() == {}  # the task instance ended: its record is gone


def fail_first_tries(monkeypatch: pytest.MonkeyPatch, on_first_try: Any = None, on_retry: Any = None) -> list[Any]:
    """Make each task instance's first wait end its try as a lost worker would (the retry follows); returns
    ``(map_index, try_number, job_id, recorded job)`` per wait."""
    from airflow_provider_sesexport._compat import AirflowException

    original = SesCreateExportJobOperator._wait
    waits: list[Any] = []

    def wait(self: SesCreateExportJobOperator, job_id: str, context: Any) -> None:
        ti = context["ti"]
        waits.append((ti.map_index, ti.try_number, job_id, recorded_job(context)))
        if ti.try_number == 1:
            if on_first_try is not None:
                on_first_try(job_id)
            raise AirflowException("worker lost while waiting")
        if on_retry is not None:
            on_retry(self, job_id)
        original(self, job_id, context)

    monkeypatch.setattr(SesCreateExportJobOperator, "_wait", wait)
    return waits


def test_two_tasks_exporting_the_same_data_never_share_a_job(
    run_dag: Any, ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch, job_store: str
) -> None:
    """Two task instances (map indexes 0 and 1) export exactly the same data; each first try fails after its job was
    created. Each retry reuses its own job, never the other's (the newer one of the same data source)."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    waits = fail_first_tries(monkeypatch, on_retry=lambda op, job_id: emu.complete_job(job_id))
    with DAG(dag_id=f"e2e_create_same_source_{job_store}", schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
        source = DATED_SOURCE
        SesCreateExportJobOperator.partial(
            task_id="create", waiter_delay=1, retries=1, retry_delay=dt.timedelta(seconds=0)
        ).expand(export_data_source=[source, source])

    dr = run_dag(dag)

    assert task_states(dr) == {"create[0]": "success", "create[1]": "success"}
    first_jobs = {index: job for index, tried, job, _ in waits if tried == 1}
    assert len(set(first_jobs.values())) == 2 and emu.stats()["jobs_created"] == 2
    for index, _, job_id, recorded in waits:
        assert (job_id, recorded) == (first_jobs[index], first_jobs[index]), waits  # its own job, recorded at once
    assert {i: xcom(dr, "create", map_index=i) for i in (0, 1)} == first_jobs
    assert emu.stats()["operations"]["ListExportJobs"]["requests"] == 0
    if job_store == "variables":
        assert job_variables() == {}


def test_a_killed_retry_cancels_its_own_job_never_another_tasks(
    run_dag: Any, ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch, job_store: str
) -> None:
    """Between the tries another task starts an export of exactly the same data (newer than ours). The retry reuses
    its own job, and when that retry is killed, on_kill cancels its own job: the other export runs on untouched."""
    from airflow_provider_sesexport._compat import AirflowFailException

    emu = ses_export_emulator
    emu.add_rule(action="hang")
    others: list[str] = []

    def another_task_exports_the_same(job_id: str) -> None:
        job = emu.client().get_export_job(JobId=job_id)
        destination = {"DataFormat": job["ExportDestination"]["DataFormat"]}
        others.append(
            emu.client().create_export_job(ExportDataSource=job["ExportDataSource"], ExportDestination=destination)[
                "JobId"
            ]
        )

    def killed(op: SesCreateExportJobOperator, job_id: str) -> None:
        op.on_kill()  # what the worker calls when the task is killed while it waits
        raise AirflowFailException("killed")

    waits = fail_first_tries(monkeypatch, on_first_try=another_task_exports_the_same, on_retry=killed)

    dr = run_dag(create_dag(f"e2e_create_killed_retry_{job_store}", deferrable=False, retries=1), **AT)

    assert task_states(dr) == {"create": "failed"}
    ((_, _, mine, _), (_, tried, reused, recorded)) = waits
    (other,) = others
    assert (tried, reused, recorded) == (2, mine, mine) and other != mine
    client = emu.client()
    assert client.get_export_job(JobId=mine)["JobStatus"] == "CANCELLED"
    assert client.get_export_job(JobId=other)["JobStatus"] == "PROCESSING"  # the other task's export: untouched
    assert emu.stats()["operations"]["CancelExportJob"]["requests"] == 1
    if job_store == "variables":
        assert job_variables() == {}  # the last try failed: the task instance ended


def test_not_durable_retry_starts_a_new_export(run_dag: Any, ses_export_emulator: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    emu.advance_after(reads=1_000)  # the first try's job never finishes
    emu.advance_after(reads=1)  # the second try's job: COMPLETED from its second GetExportJob

    dag = create_dag("e2e_create_not_durable", deferrable=False, waiter_max_attempts=3, retries=1, durable=False)
    dr = run_dag(dag)

    assert task_states(dr) == {"create": "success"}
    assert try_number(dr, "create") == 2
    first, second = emu.jobs()
    assert xcom(dr, "create") == second["JobId"] != first["JobId"]
    assert emu.stats()["operations"]["ListExportJobs"]["succeeded"] == 0
    if AIRFLOW_RESUMES_JOBS:
        assert stored_job_id(dr) is None  # durable=False stores nothing


def test_deferrable_wait_with_triggerer_restart(
    run_dag: Any, ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dag.test() runs the trigger; mid-wait it is serialized, dropped, rebuilt from that form, and completes."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    original_run = SesExportJobTrigger.run
    restarts: list[tuple[str, dict[str, Any]]] = []

    async def run_with_restart(self: SesExportJobTrigger) -> AsyncIterator[Any]:
        async def consume(trigger: SesExportJobTrigger) -> Any:
            async for event in original_run(trigger):
                return event
            return None

        first = asyncio.ensure_future(consume(self))
        while emu.stats()["operations"]["ListExportJobs"]["succeeded"] < 4:
            await asyncio.sleep(0.05)
        classpath, kwargs = self.serialize()
        first.cancel()  # the triggerer dies
        try:
            await first
        except asyncio.CancelledError:
            pass
        assert poller_mod.active_pollers() == {}
        restarts.append((classpath, kwargs))
        emu.complete_job(kwargs["job_id"])  # finishes while no trigger runs
        module, _, name = classpath.rpartition(".")
        rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
        async for event in original_run(rebuilt):
            yield event

    monkeypatch.setattr(SesExportJobTrigger, "run", run_with_restart)

    dr = run_dag(create_dag("e2e_create_deferrable", deferrable=True), **AT)

    assert task_states(dr) == {"create": "success"}
    assert len(restarts) == 1
    job_id = xcom(dr, "create")
    assert restarts[0][1]["job_id"] == job_id
    assert restarts[0][1]["aws_conn_id"] == "aws_default"
    summary = xcom(dr, "create", key="export_job")
    assert summary["job_status"] == "COMPLETED" and summary["job_id"] == job_id
    assert emu.stats()["jobs_created"] == 1


def test_deferrable_failure_fails_the_task(run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    ses_export_emulator.fail_next(1, message="Export quota exhausted")
    dr = run_dag(create_dag("e2e_create_deferrable_failed", deferrable=True, retries=2), **AT)

    assert task_states(dr) == {"create": "failed"}
    assert try_number(dr, "create") == 1
    out = task_logs()
    assert "SesExportJobFailedError" in out and "Export quota exhausted" in out


def mapped_create_dag(dag_id: str, count: int) -> Any:
    schedule = daily_data_interval_schedule()
    with DAG(dag_id=dag_id, schedule=schedule, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        sources = [
            {"MetricsDataSource": {**SOURCE["MetricsDataSource"], "Dimensions": {"ISP": [f"isp-{i}"]}}}
            for i in range(count)
        ]
        SesCreateExportJobOperator.partial(task_id="create", wait_for_completion=False).expand(
            export_data_source=sources
        )
    return dag


@pytest.mark.ses_export_emulator(time_scale=1.0, create_rate_limit=1.0)
def test_mapped_creates_under_the_rate_limit(run_dag: Any, ses_export_emulator: Any) -> None:
    """Back-to-back creates against 1 call/s all succeed: whatever SES throttles, botocore's retries ride out."""
    dr = run_dag(mapped_create_dag("e2e_create_rate", 3), **AT)

    assert task_states(dr) == {f"create[{i}]": "success" for i in range(3)}
    stats = ses_export_emulator.stats()
    assert stats["jobs_created"] == 3
    creates = stats["operations"]["CreateExportJob"]
    assert creates["succeeded"] == 3 and creates["requests"] == 3 + creates["throttled"]  # each 429 retried


@pytest.mark.integration
@pytest.mark.ses_export_emulator(time_scale=1.0, create_rate_limit=1.0)
def test_creates_at_once_ride_out_the_rate_limit_on_botocore_retries(ses_export_emulator: Any) -> None:
    """Three create tasks at once (a hook each, as in three workers) against 1 call/s: botocore retries the 429s."""
    request = build_create_export_job_request(DATED_SOURCE, "CSV")
    barrier = threading.Barrier(3)

    def create(_: int) -> str:
        hook = SesExportJobHook(aws_conn_id="aws_default")
        hook.conn  # noqa: B018  (the client first, so that the three calls leave together)
        barrier.wait()
        return create_in_free_slot(hook, request, mock.Mock(), mock.Mock())

    with ThreadPoolExecutor(3) as pool:
        job_ids = list(pool.map(create, range(3)))

    assert len(set(job_ids)) == 3
    stats = ses_export_emulator.stats()
    assert stats["jobs_created"] == 3
    assert stats["operations"]["CreateExportJob"]["throttled"] > 0


@pytest.mark.integration
@pytest.mark.ses_export_emulator(time_scale=1.0, create_rate_limit=1.0)
def test_a_create_throttled_past_its_retries_fails_saying_so(ses_export_emulator: Any) -> None:
    hook = SesExportJobHook(aws_conn_id="aws_default", config=Config(retries={"mode": "adaptive", "max_attempts": 0}))
    request = build_create_export_job_request(DATED_SOURCE, "CSV")
    create_in_free_slot(hook, request, mock.Mock(), mock.Mock())
    with pytest.raises(SesExportJobError) as err:
        create_in_free_slot(hook, request, mock.Mock(), mock.Mock())  # within the same second
    assert "still throttled after 1 attempts in botocore's 'adaptive' retry mode" in str(err.value)
    assert ses_export_emulator.stats()["jobs_created"] == 1


@pytest.mark.integration
@pytest.mark.ses_export_emulator(time_scale=1.0)
def test_on_kill_cancels_the_running_job_over_http(ses_export_emulator: Any) -> None:
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    op = SesCreateExportJobOperator(
        task_id="create", export_data_source=SOURCE, wait_for_completion=False, deferrable=False
    )
    op.export_data_source = DATED_SOURCE
    job_id = op.execute({"ti": None})  # type: ignore[arg-type]

    op.on_kill()

    assert emu.client().get_export_job(JobId=job_id)["JobStatus"] == "CANCELLED"
    assert emu.stats()["operations"]["CancelExportJob"]["succeeded"] == 1


# -- a deferred task killed by a user: the triggerer's own cancellation paths, over HTTP ---------------------
async def run_under_triggerer(emu: Any, trigger: SesExportJobTrigger, kill: str) -> None:
    """
    Run ``trigger`` in Airflow's TriggerRunner until it polls, then end it the way the triggerer would.

    ``kill="user"``: the task was marked failed / succeeded or cleared (the trigger goes through the
    runner's cancel queue); ``kill="shutdown"``: the triggerer stops (its task is cancelled directly).
    """
    from unittest import mock

    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    # Airflow 2 reads the trigger's task instance for its timeout and log routing; Airflow 3 only logs it
    trigger.task_instance = None if AIRFLOW_V_3 else mock.Mock(trigger_timeout=None)  # type: ignore[assignment]
    trigger.trigger_id = 1
    trigger.timeout_after = None  # set by Airflow 3.0's triggerer before it runs a trigger, read on cancellation
    details: dict[str, Any] = {"name": "create-trigger", "events": 0, "is_watcher": False}
    runner.triggers[1] = details  # type: ignore[assignment]
    details["task"] = asyncio.ensure_future(runner.run_trigger(1, trigger))
    while emu.stats()["operations"]["ListExportJobs"]["succeeded"] < 2:
        await asyncio.sleep(0.05)
    if kill == "user":
        runner.to_cancel.append(1)
        await runner.cancel_triggers()
    else:
        details["task"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await details["task"]


def deferred_create_trigger() -> SesExportJobTrigger:
    """What a deferrable create task hands the triggerer, rebuilt from its serialized form."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    op = SesCreateExportJobOperator(
        task_id="create", export_data_source=SOURCE, deferrable=True, waiter_delay=1, waiter_max_attempts=100
    )
    op.export_data_source = DATED_SOURCE
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": None})  # type: ignore[arg-type]
    classpath, kwargs = deferred.value.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)  # type: ignore[no-any-return]


@pytest.mark.integration
@pytest.mark.ses_export_emulator(time_scale=1.0)
def test_killed_deferred_create_cancels_its_job(ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3.3+ calls the trigger's on_kill on a user action; older triggerers never call it (documented)."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")
    trigger = deferred_create_trigger()
    assert trigger.cancel_on_kill is True

    asyncio.run(run_under_triggerer(emu, trigger, kill="user"))

    status = emu.client().get_export_job(JobId=trigger.job_id)["JobStatus"]
    cancels = emu.stats()["operations"]["CancelExportJob"]["succeeded"]
    from airflow.triggers.base import BaseTrigger

    if hasattr(BaseTrigger, "on_kill"):  # the triggerer calls it: Airflow 3.3+
        assert (status, cancels) == ("CANCELLED", 1)
    else:
        assert status in ("CREATED", "PROCESSING") and cancels == 0


@pytest.mark.integration
@pytest.mark.ses_export_emulator(time_scale=1.0)
@pytest.mark.parametrize("who", ["create-shutdown", "sensor-user"])
def test_triggerer_shutdown_or_a_killed_sensor_leaves_the_job_running(
    ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    """A triggerer restart must not cancel the create task's job; a sensor never cancels a job it did not start."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")
    if who == "create-shutdown":
        trigger, kill = deferred_create_trigger(), "shutdown"
    else:
        job_id = emu.client().create_export_job(
            ExportDataSource={
                "MetricsDataSource": {
                    **SOURCE["MetricsDataSource"],
                    "StartDate": dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc),
                    "EndDate": dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc),
                }
            },
            ExportDestination={"DataFormat": "CSV"},
        )["JobId"]
        trigger, kill = SesExportJobTrigger(job_id=job_id, poll_interval=1), "user"  # as the sensor builds it

    asyncio.run(run_under_triggerer(emu, trigger, kill=kill))

    assert emu.client().get_export_job(JobId=trigger.job_id)["JobStatus"] in ("CREATED", "PROCESSING")  # running
    assert emu.stats()["operations"]["CancelExportJob"]["succeeded"] == 0


def clear_in_airflow(dr: Any, dag: Any) -> Any:
    """Clear the run's create task with Airflow's own ``clear_task_instances`` (as the UI does); the fresh TI."""
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id="create").all()
        if AIRFLOW_V_3:
            clear_task_instances(tis, session)
        else:
            clear_task_instances(tis, session, dag=dag)
    return dr.get_task_instance("create")


def test_a_clear_raises_max_tries_past_the_record_of_every_earlier_try(
    run_dag: Any, ses_export_emulator: Any, monkeypatch: pytest.MonkeyPatch, job_store: str
) -> None:
    """What a try records carries the task instance's max_tries; Airflow's Clear raises max_tries, so the cleared
    task instance never takes that record for its own (Airflow 3.3 even keeps task_state_store through success and
    Clear)."""
    original = SesCreateExportJobOperator._wait
    records: list[Any] = []

    def wait(self: SesCreateExportJobOperator, job_id: str, context: Any) -> None:
        store = context.get("task_state_store") if AIRFLOW_RESUMES_JOBS and _compat._AIRFLOW_RESUMES_JOBS else None
        records.append((store or _compat.VariableTaskStore.of(context)).get(self.external_id_key))
        original(self, job_id, context)

    monkeypatch.setattr(SesCreateExportJobOperator, "_wait", wait)
    dag = create_dag(f"e2e_create_clear_{job_store}", deferrable=False, retries=2)
    dr = run_dag(dag, **AT)
    assert task_states(dr) == {"create": "success"}
    job_id = xcom(dr, "create")
    (record,) = records
    ran = dr.get_task_instance("create")
    assert ran.max_tries == 2 and record == {"job_id": job_id, "max_tries": 2}
    assert _compat.recorded_job_id(record, {"ti": ran}) == job_id  # a retry of that try would reuse it

    cleared = clear_in_airflow(dr, dag)

    assert cleared.max_tries == ran.try_number + 2 > record["max_tries"]
    assert _compat.recorded_job_id(record, {"ti": cleared}) is None
    if job_store == "task_state_store":
        assert stored_job_id(dr) == job_id  # Airflow kept the record through success and Clear
