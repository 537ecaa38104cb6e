"""
Fault table, process-loss rows: triggerer restart, worker killed between reschedules, create task retried.

Timing follows ``conftest.py`` (nominal seconds times ``SCALE``); these rows are about state surviving a
lost process, so they assert on what the emulator saw (jobs created, calls made) and on task state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_provider_sesexport._compat import AirflowException
from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from tests.conftest import REPO
from tests.reliability.conftest import SCALE, nominal
from tests.reliability.helpers import START, create_job, gate_dag, metrics_source, state_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ses_export_emulator(time_scale=SCALE, processing_seconds=40, create_rate_limit=None),
]


def _ops(emu: Any, op: str, counter: str = "requests") -> int:
    return int(emu.stats()["operations"][op][counter])


def _rebuild(classpath: str, kwargs: dict[str, Any]) -> SesExportJobTrigger:
    """What a new triggerer does with the row it finds in the ``trigger`` table: import and instantiate."""
    module, _, name = classpath.rpartition(".")
    kwargs = json.loads(json.dumps(kwargs))  # the stored form is JSON: nothing else survives a restart
    return getattr(importlib.import_module(module), name)(**kwargs)


def test_triggerer_restart_mid_wait_direct(ses_export_emulator: Any) -> None:
    """
    Trigger polled a few cycles, then its triggerer dies (cancelled: serialize, drop); the job completes
    while none runs; a new triggerer (new event loop) rebuilds it from the JSON form: exactly one event.
    """
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)
    trigger = SesExportJobTrigger(
        job_id=job_id,
        poll_interval=nominal(5),
        timeout_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=nominal(1200)),
    )

    async def first_triggerer() -> tuple[str, dict[str, Any]]:
        events: list[Any] = []

        async def consume() -> None:
            async for event in trigger.run():
                events.append(event)

        task = asyncio.ensure_future(consume())
        deadline = time.monotonic() + 30
        while _ops(emu, "ListExportJobs", "succeeded") < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        serialized = trigger.serialize()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert events == [], "the dropped trigger must not have emitted anything"
        assert poller_mod.active_pollers() == {}, "the dropped triggerer left a poller (and its client) behind"
        return serialized

    classpath, kwargs = asyncio.run(first_triggerer())
    assert _ops(emu, "ListExportJobs", "succeeded") >= 4
    emu.complete_job(job_id)

    rebuilt = _rebuild(classpath, kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)

    async def second_triggerer() -> list[Any]:
        return [event async for event in rebuilt.run()]  # to exhaustion: a trigger must emit exactly one

    events = asyncio.run(asyncio.wait_for(second_triggerer(), 30))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success" and payload["job_id"] == job_id
    assert payload["summary"]["job_status"] == "COMPLETED"
    json.dumps(payload)


def test_triggerer_restart_mid_wait_in_dag_run(
    ses_export_emulator: Any, run_dag: Any, dag_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferrable sensor in a real run; mid-wait the triggerer restarts; the wait completes with one event, try 1."""
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)
    original_run = SesExportJobTrigger.run
    restarts: list[dict[str, Any]] = []
    emitted: list[Any] = []

    async def run_with_restart(self: SesExportJobTrigger) -> AsyncIterator[Any]:
        async def consume(trigger: SesExportJobTrigger) -> None:
            async for event in original_run(trigger):
                emitted.append(event)

        first = asyncio.ensure_future(consume(self))
        deadline = time.monotonic() + 30
        while _ops(emu, "ListExportJobs", "succeeded") < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        classpath, kwargs = self.serialize()
        first.cancel()  # the triggerer process dies
        try:
            await first
        except asyncio.CancelledError:
            pass
        restarts.append(kwargs)
        emu.complete_job(job_id)  # finishes while no triggerer runs
        async for event in original_run(_rebuild(classpath, kwargs)):
            emitted.append(event)
            yield event

    monkeypatch.setattr(SesExportJobTrigger, "run", run_with_restart)
    dr = run_dag(gate_dag(dag_id, job_id, sensor_kwargs={"deferrable": True}))
    wait = dr.get_task_instance("wait")
    assert (state_of(wait), state_of(dr.get_task_instance("result"))) == ("success", "success")
    assert wait.try_number == 1
    assert len(restarts) == 1 and restarts[0]["job_id"] == job_id
    assert len(emitted) == 1 and emitted[0].payload["status"] == "success"
    assert wait.xcom_pull(task_ids="wait")["job_status"] == "COMPLETED"


_CHILD = textwrap.dedent(
    """
    import sys
    from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor

    sensor = SesExportJobSensor(task_id="wait", job_id=sys.argv[1], botocore_config={"read_timeout": 120})
    print("CHILD poke:", sensor.poke({}), flush=True)  # PROCESSING: not done, reschedule
    print("CHILD second poke", flush=True)
    sensor.poke({})  # blocked in the emulator's latency: the process is killed here
    print("unreachable", flush=True)
    """
)


def _child_says(child: subprocess.Popen[str]) -> str:
    """The child's next line of its own (its stdout also carries Airflow's log lines)."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("CHILD"):
            return line.strip()
    raise AssertionError(f"child exited ({child.wait()}) without reporting")


def test_sensor_process_killed_between_reschedules(
    ses_export_emulator: Any, run_dag: Any, dag_id: str, tmp_path: Any
) -> None:
    """
    A worker runs a poke (job PROCESSING), then is SIGKILLed in the middle of the next one. The next
    poke, in a fresh process with a fresh sensor, continues the same job: no state lived in the dead one.
    """
    emu = ses_export_emulator
    emu.add_rule(action="hang")
    job_id = create_job(emu)
    emu.reset_stats()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, job_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert _child_says(child) == "CHILD poke: False"
        emu.set_faults(latency=60)  # hold the next poke mid-request
        assert _child_says(child) == "CHILD second poke"
        deadline = time.monotonic() + 30
        while _ops(emu, "GetExportJob") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _ops(emu, "GetExportJob") == 2, "the second poke never reached the emulator"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    emu.clear_faults()
    emu.complete_job(job_id)

    dr = run_dag(gate_dag(dag_id, job_id))
    wait = dr.get_task_instance("wait")
    assert (state_of(wait), state_of(dr.get_task_instance("result"))) == ("success", "success")
    assert wait.try_number == 1
    assert wait.xcom_pull(task_ids="wait")["job_id"] == job_id
    assert emu.stats()["jobs_created"] == 0 and len(emu.jobs()) == 1  # the same job, nothing new started


@pytest.mark.parametrize("deferrable", [False, True])
def test_create_retried_after_job_was_created_starts_no_second_export(
    ses_export_emulator: Any, run_dag: Any, dag_id: str, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    """
    The create task's first try dies after CreateExportJob succeeded (while waiting); the retry must find
    and reuse that job: the emulator counts exactly one export.
    """
    from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
    from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
    from tests.airflow_names import DAG

    emu = ses_export_emulator
    emu.reset_stats()
    failures: list[str] = []
    if deferrable:
        original_run = SesExportJobTrigger.run

        async def run_failing_once(self: SesExportJobTrigger) -> AsyncIterator[Any]:
            if not failures:
                failures.append(self.job_id)
                from airflow.triggers.base import TriggerEvent

                lost = {"status": "error", "job_id": self.job_id, "message": "triggerer lost"}
                yield TriggerEvent({**lost, "deferred_try": self.deferred_try})
                return
            async for event in original_run(self):
                yield event

        monkeypatch.setattr(SesExportJobTrigger, "run", run_failing_once)
    else:
        original_wait = SesExportJobHook.wait_for_export_job

        def wait_failing_once(self: SesExportJobHook, job_id: str, *args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(job_id)
                raise AirflowException("worker lost while waiting")
            return original_wait(self, job_id, *args, **kwargs)

        monkeypatch.setattr(SesExportJobHook, "wait_for_export_job", wait_failing_once)

    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesCreateExportJobOperator(
            task_id="create",
            export_data_source=metrics_source(),
            waiter_delay=nominal(5),
            waiter_max_attempts=200,
            deferrable=deferrable,
            retries=2,
            retry_delay=dt.timedelta(seconds=0),
        )
    dr = run_dag(dag)
    create = dr.get_task_instance("create")
    assert state_of(create) == "success"
    assert create.try_number == 2, "the first try was meant to fail after creating the job"
    assert len(failures) == 1
    assert emu.stats()["jobs_created"] == 1, "the retry started a second export"
    (job,) = emu.jobs()
    # the JobId its first try recorded: task_state_store on Airflow 3.3+, an Airflow Variable below 3.3
    assert create.xcom_pull(task_ids="create") == job["JobId"] == failures[0]
