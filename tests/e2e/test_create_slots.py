"""
Facts 6 and 9 for real: the create operator waits for a free export slot, and on_kill of a job that finished
meanwhile is an info line. boto3/aiobotocore over HTTP against the emulator, DAGs in ``dag.test()``.

The emulator allows one unfinished job (``max_unfinished_jobs=1``); a job started by "another system" holds the
slot until its ``advance_after`` rule completes it after a given number of ListExportJobs answers listing it,
i.e. after a given number of the operator's attempts: no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from tests.conftest import task_states
from tests.e2e.conftest import create_job, try_number, xcom
from tests.e2e.test_create_operator import AT, SOURCE, create_dag

pytestmark = [pytest.mark.e2e, pytest.mark.ses_export_emulator(max_unfinished_jobs=1)]


def occupy_the_slot(emu: Any, attempts: int) -> str:
    """Start a job elsewhere that stays PROCESSING until ``attempts`` ListExportJobs answers have listed it."""
    # The rule waits for the next job created, so the blocker is held from its creation on: attached after it, the
    # rule lost the race against a loaded machine (the job finished in its 20 ms of scaled processing first).
    emu.advance_after(None, reads=attempts, count="list")
    blocker = create_job(emu)
    emu.reset_stats()
    return blocker


def creates(emu: Any) -> dict[str, int]:
    return emu.stats()["operations"]["CreateExportJob"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_create_waits_for_a_free_slot(run_dag: Any, ses_export_emulator: Any, task_logs: Any, deferrable: bool) -> None:
    emu = ses_export_emulator
    blocker = occupy_the_slot(emu, attempts=2)

    dr = run_dag(create_dag(f"e2e_slot_wait_{'deferrable' if deferrable else 'sync'}", deferrable=deferrable), **AT)

    assert task_states(dr) == {"create": "success"}
    assert try_number(dr, "create") == 1  # waited within the try: no retry spent
    job_id = xcom(dr, "create")
    assert job_id != blocker and xcom(dr, "create", key="export_job")["job_status"] == "COMPLETED"
    assert emu.client().get_export_job(JobId=blocker)["JobStatus"] == "COMPLETED"
    logs = task_logs()
    assert "No free SES export slot: 1 unfinished METRICS_DATA export jobs (attempt 1)" in logs
    if deferrable:
        # the worker tried once and handed the wait to the triggerer, which watched the slot free up
        assert creates(emu) == {**creates(emu), "client_errors": 1, "succeeded": 1}
        assert "waiting on the triggerer" in logs
        assert "No free SES export slot: 1 unfinished METRICS_DATA export jobs (attempt 2)" in logs
        assert "SES export slot check: 0 unfinished METRICS_DATA export jobs (attempt 3)" in logs
    else:
        # one CreateExportJob request per attempt (botocore does not retry the limit error), paced: no 429
        assert creates(emu) == {**creates(emu), "client_errors": 2, "succeeded": 1, "throttled": 0}
        assert "No free SES export slot: 1 unfinished METRICS_DATA export jobs (attempt 2)" in logs
    assert emu.stats()["jobs_created"] == 1


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_no_slot_within_slot_wait_timeout_fails_naming_it(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, deferrable: bool
) -> None:
    emu = ses_export_emulator
    occupy_the_slot(emu, attempts=1_000_000)  # never frees

    dag_id = f"e2e_slot_limit_{'deferrable' if deferrable else 'sync'}"
    dag = create_dag(dag_id, deferrable=deferrable, slot_wait_timeout=2, retries=1)
    dr = run_dag(dag, **AT)

    assert task_states(dr) == {"create": "failed"}
    assert try_number(dr, "create") == 2  # an ordinary failure: the retry waited again
    logs = task_logs()
    assert "SesExportNoSlotError" in logs
    assert "slot_wait_timeout (2 s) is used up" in logs and "Raise slot_wait_timeout to wait longer" in logs
    assert emu.stats()["jobs_created"] == 0


@pytest.mark.integration
def test_botocore_does_not_retry_the_limit_error_over_http(ses_export_emulator: Any) -> None:
    """With the hook's standard retry mode (5 attempts), a refused create is one request, not five."""
    from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
    from airflow_provider_sesexport.utils import aws_errors

    emu = ses_export_emulator
    occupy_the_slot(emu, attempts=1_000_000)
    hook = SesExportJobHook(aws_conn_id="aws_default")
    assert hook.conn.meta.config.retries["mode"] == "standard"  # which counts LimitExceededException as throttling
    with pytest.raises(Exception) as info:
        hook.create_export_job(
            {"MetricsDataSource": {**SOURCE["MetricsDataSource"], "StartDate": "2026-10-01", "EndDate": "2026-10-02"}}
        )
    assert aws_errors.means_no_free_slot(info.value)
    assert "There are too many <METRICS_DATA> export jobs running" in str(info.value)
    assert creates(emu)["requests"] == 1


# -- fact 9: the job finished between on_kill's GetExportJob and its CancelExportJob ---------------------------
def started_job(emu: Any) -> str:
    """A job whose next GetExportJob still reads PROCESSING; it is COMPLETED right after that read."""
    emu.advance_after(None, reads=1, count="get")  # before the job exists, as in occupy_the_slot
    return create_job(emu)


@pytest.mark.integration
def test_on_kill_of_a_job_that_finished_meanwhile_over_http(ses_export_emulator: Any) -> None:
    from unittest import mock

    emu = ses_export_emulator
    op = SesCreateExportJobOperator(task_id="create", export_data_source=SOURCE, deferrable=False)
    op.job_id = started_job(emu)

    with mock.patch.object(op.log, "info") as info, mock.patch.object(op.log, "warning") as warning:
        op.on_kill()  # must not raise

    assert warning.call_args_list == []
    assert info.call_args_list == [
        mock.call("SES export job %s finished (%s) before it could be cancelled.", op.job_id, "COMPLETED")
    ]
    cancel = emu.stats()["operations"]["CancelExportJob"]
    assert (cancel["requests"], cancel["client_errors"]) == (1, 1)  # SES refused it: 400 "Cannot cancel ..."
    assert emu.client().get_export_job(JobId=op.job_id)["JobStatus"] == "COMPLETED"


@pytest.mark.integration
def test_trigger_on_kill_of_a_job_that_finished_meanwhile_over_http(ses_export_emulator: Any) -> None:
    from unittest import mock

    emu = ses_export_emulator
    trigger = SesExportJobTrigger(job_id=started_job(emu), poll_interval=1, cancel_on_kill=True)

    with mock.patch.object(trigger.log, "info") as info, mock.patch.object(trigger.log, "warning") as warning:
        asyncio.run(trigger.on_kill())

    assert warning.call_args_list == []
    assert info.call_args_list == [
        mock.call("SES export job %s finished (%s) before it could be cancelled.", trigger.job_id, "COMPLETED")
    ]
    cancel = emu.stats()["operations"]["CancelExportJob"]
    assert (cancel["requests"], cancel["client_errors"]) == (1, 1)
