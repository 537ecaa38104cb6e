"""Fault drills in the MWAA-shaped deployment: processes killed (SIGKILL, no clean-up) or restarted mid-run, an SES
throttle storm under 50 deferred waits. Each drill's DAG is in ``tests/deployment/dags/drills.py``.

Every fault window opens at the first call it should hit (an emulator rule or fault set once the task is seen doing
that call), never on the clock. The drills marked ``newest_image_only`` run on the newest MWAA image (issue 11
allows that); the create-retry drills also run on the other images, where Airflow < 3.3 records the job a try
started in an Airflow Variable instead of ``task_state_store``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deployment.airflow_settings import TASK_HEARTBEAT_TIMEOUT
from deployment.cluster import Deployment, restart
from deployment.services import descendants, parent_pid
from tests.deployment.conftest import AirflowApi, Aws, MetadataDb, State, midnight

#: Longest a drill waits for one step (a heartbeat timeout, a triggerer takeover, a retry) before failing.
STEP_TIMEOUT = 300.0
TRIGGER_FIRED = "Trigger fired event"
TRIGGERERS = ("triggerer-1", "triggerer-2")


@pytest.fixture(scope="module")
def deployment(state: State) -> Deployment:
    dep = Deployment.load(state.image)
    assert dep is not None, "no running deployment"
    return dep


@pytest.fixture
def revive(deployment: Deployment) -> Iterator[Callable[[str], None]]:
    """Restart the named processes a drill killed, when it is done with them (or fails): the next drill has both
    triggerers, both workers and the scheduler again."""
    killed: list[str] = []
    yield killed.append
    for name in killed:
        if not deployment.record(name).alive:
            restart(deployment, name)


def wait_until(what: str, condition: Callable[[], Any], timeout: float = STEP_TIMEOUT) -> Any:
    """Poll ``condition`` until it is truthy (returning its value); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.5)
    return value


def task_instance(api: AirflowApi, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
    (ti,) = [t for t in api.task_instances(dag_id, run_id) if (t["task_id"], t["map_index"]) == (task_id, map_index)]
    return ti


def worker_running(dep: Deployment, ti: dict[str, Any]) -> str:
    """The Celery worker (``worker-1`` / ``worker-2``) the task instance's process descends from."""
    workers = {dep.record(n).pid: n for n in ("worker-1", "worker-2")}
    pid: int | None = int(ti["pid"])
    while pid and pid not in workers:
        pid = parent_pid(pid)
    assert pid, f"task process {ti['pid']} runs in no Celery worker"
    return workers[pid]


def open_trigger_logs(dep: Deployment, name: str, run_log_folder: Path) -> set[str]:
    """The trigger log files of one DAG run that triggerer ``name`` has open: the waits it runs right now."""
    found = set()
    triggerer = dep.record(name).pid
    for pid in [triggerer, *descendants(triggerer)]:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(run_log_folder)) and ".trigger." in target:
                found.add(target)
    return found


def run_log_folder(state: State, dag_id: str, run_id: str) -> Path:
    return Path(state.data["task_log_folder"]) / f"dag_id={dag_id}" / f"run_id={run_id}"


def trigger_events(state: State, dag_id: str, run_id: str) -> dict[int, int]:
    """``Trigger fired event`` lines per map index, over every trigger log of the run (every triggerer's)."""
    counts: dict[int, int] = {}
    for log in run_log_folder(state, dag_id, run_id).glob("task_id=wait/map_index=*/*.trigger.*.log"):
        index = int(log.parent.name.split("=")[1])
        counts[index] = counts.get(index, 0) + log.read_text().count(TRIGGER_FIRED)
    return counts


def assert_one_event_each(state: State, dag_id: str, run_id: str, waits: int) -> None:
    """Each of the run's ``waits`` waits ended with exactly one event: at least one, since every task resumed from its
    wait and succeeded on try 1 (checked before), and no more than one in any triggerer's trigger log. A trigger's log
    file may be written out after its task succeeded, so a missing count is no evidence either way."""
    counts = trigger_events(state, dag_id, run_id)
    assert set(counts) <= set(range(waits)), counts
    assert all(n <= 1 for n in counts.values()), f"a wait fired more than one event: {counts}"


def hold_new_jobs(aws: Aws, count: int, source_type: str | None = None) -> None:
    """The next ``count`` jobs created stay PROCESSING until the drill completes them."""
    aws.control("add_rule", action="hang", count=count, **({"source_type": source_type} if source_type else {}))


def create_jobs(aws: Aws, create: Callable[..., str], n: int) -> list[str]:
    jobs = []
    for _ in range(n):
        jobs.append(create(end=midnight(days_ago=1)))
        time.sleep(0.15)  # CreateExportJob allows 1 call per (emulated) second
    return jobs


def start(api: AirflowApi, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    api.unpause(dag_id)
    return api.trigger(dag_id, logical_date=dt.datetime.now(dt.timezone.utc), conf=conf)


def assert_tries(api: AirflowApi, dag_id: str, run_id: str, expected: dict[str, int]) -> None:
    """The run succeeded, and each task needed the given number of tries (1 where not named)."""
    run = api.wait_for_run(dag_id, run_id)
    tries = {
        ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): (ti["state"], ti["try_number"])
        for ti in api.task_instances(dag_id, run_id)
    }
    assert run["state"] == "success", tries
    assert tries == {k: ("success", expected.get(k, 1)) for k in tries}


def jobs_created(aws: Aws) -> int:
    return int(aws.control("stats")["jobs_created"])


def job_ids(aws: Aws) -> set[str]:
    return {j["JobId"] for j in aws.control("jobs")["jobs"]}


def job_records(api: AirflowApi, dag_id: str) -> list[str]:
    """The Airflow Variables holding a create task's JobId (Airflow < 3.3) for ``dag_id``'s tasks."""
    prefix = f"sesexport_job.{dag_id}."
    return [v["key"] for v in api.get("/variables", limit=100)["variables"] if v["key"].startswith(prefix)]


def records_in_variables(state: State) -> bool:
    """Airflow < 3.3 keeps the create task's JobId in an Airflow Variable; 3.3+ in ``task_state_store``."""
    major, minor = (int(part) for part in state.image.split(".")[:2])
    return (major, minor) < (3, 3)


@pytest.mark.newest_image_only
def test_killed_triggerer_hands_its_waits_to_the_other(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws, state: State, deployment: Deployment, revive: Any
) -> None:
    """SIGKILL the triggerer running the waits: the other takes them over; every wait fires exactly one event."""
    hold_new_jobs(aws, 6)
    jobs = create_jobs(aws, aws.create_metrics_job, 6)
    dag_id = "drill_deferred_waits"
    run_id = start(api, dag_id, {"job_ids": jobs})
    wait_until("6 waits assigned", lambda: len([t for t in metadata_db.triggers(dag_id, run_id) if t[2]]) == 6)
    folder = run_log_folder(state, dag_id, run_id)
    held = wait_until(
        "the triggerers running all 6 waits",
        lambda: (
            sum(map(len, (h := {n: open_trigger_logs(deployment, n, folder) for n in TRIGGERERS}).values())) == 6 and h
        ),
    )
    holder = max(held, key=lambda n: len(held[n]))
    # a trigger's log file is named after the triggerer (job id) running it: attempt=1.log.trigger.<job id>.log
    dead_job = {int(path.rsplit(".trigger.", 1)[1].removesuffix(".log")) for path in held[holder]}

    deployment.record(holder).kill()
    revive(holder)
    # the dead triggerer stops heartbeating; once it counts as unhealthy the other one claims its triggers
    wait_until(
        "every wait running in a live triggerer",
        lambda: (
            {t[2] for t in metadata_db.triggers(dag_id, run_id)} <= metadata_db.running_triggerers() - dead_job
            and all(t[2] is not None for t in metadata_db.triggers(dag_id, run_id))
        ),
    )
    (survivor,) = set(TRIGGERERS) - {holder}
    wait_until("the survivor runs all 6 waits", lambda: len(open_trigger_logs(deployment, survivor, folder)) == 6)
    for job_id in jobs:
        aws.control("complete_job", job_id=job_id)
    assert_tries(api, dag_id, run_id, {})
    assert_one_event_each(state, dag_id, run_id, 6)


@pytest.mark.newest_image_only
def test_killed_worker_during_a_reschedule_poke_is_retried(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws, deployment: Deployment, revive: Any
) -> None:
    """SIGKILL the Celery worker in the middle of a poke: the scheduler fails the task once its heartbeat is
    overdue, the retry pokes on the other worker, the job is the same one (one CreateExportJob), one S3 object."""
    dag_id = "drill_pipeline"
    hold_new_jobs(aws, 1)
    created_before = jobs_created(aws)
    run_id = start(api, dag_id)
    wait_until("a first reschedule", lambda: metadata_db.reschedules(dag_id, run_id, "wait") >= 1)
    aws.control("set_faults", latency=600.0)  # the next poke's GetExportJob hangs: the worker is inside the poke
    ti = wait_until(
        "a poke in flight",
        lambda: (ti := task_instance(api, dag_id, run_id, "wait"))["state"] == "running" and ti,
    )
    time.sleep(1)
    worker = worker_running(deployment, ti)
    deployment.record(worker).kill()
    revive(worker)
    aws.control("clear_faults")
    wait_until(
        f"the retry (heartbeat timeout {TASK_HEARTBEAT_TIMEOUT} s)",
        lambda: task_instance(api, dag_id, run_id, "wait")["try_number"] == 2,
    )
    job_id = api.xcom(dag_id, run_id, "create")
    aws.control("complete_job", job_id=job_id)
    assert_tries(api, dag_id, run_id, {"wait": 2})
    assert jobs_created(aws) - created_before == 1
    _assert_one_copy(api, aws, dag_id, run_id, job_id)


@pytest.mark.newest_image_only
def test_killed_worker_during_a_copy_is_retried(api: AirflowApi, aws: Aws, deployment: Deployment, revive: Any) -> None:
    """SIGKILL the Celery worker while the copy waits for the file's first byte: the retry copies it whole, once."""
    dag_id = "drill_pipeline"
    aws.control("advance_after", reads=1)  # the DAG's job: done at the sensor's first read
    created_before = jobs_created(aws)
    downloads_before = aws.control("stats")["downloads"]["requests"]
    aws.control("set_faults", download_latency=600.0)
    run_id = start(api, dag_id)
    ti = wait_until(
        "the copy's download started",
        lambda: (
            aws.control("stats")["downloads"]["requests"] > downloads_before
            and (ti := task_instance(api, dag_id, run_id, "copy"))["state"] == "running"
            and ti
        ),
    )
    worker = worker_running(deployment, ti)
    deployment.record(worker).kill()
    revive(worker)
    aws.control("clear_faults")
    assert_tries(api, dag_id, run_id, {"copy": 2})
    assert jobs_created(aws) - created_before == 1
    _assert_one_copy(api, aws, dag_id, run_id, api.xcom(dag_id, run_id, "create"))


def _assert_one_copy(api: AirflowApi, aws: Aws, dag_id: str, run_id: str, job_id: str) -> None:
    uri = api.xcom(dag_id, run_id, "copy")
    key = uri.removeprefix(f"s3://{aws.bucket}/")
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=key)
    assert [o["Key"] for o in listed.get("Contents", [])] == [key]
    assert aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() == aws.export_file(job_id)


@pytest.mark.newest_image_only
def test_scheduler_restart_mid_run(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws, deployment: Deployment, revive: Any
) -> None:
    """Stop the scheduler while the sensor is between pokes, start it again: the run completes, nothing retried."""
    dag_id = "drill_pipeline"
    aws.control("advance_after", reads=4)
    run_id = start(api, dag_id)
    wait_until("a first reschedule", lambda: metadata_db.reschedules(dag_id, run_id, "wait") >= 1)
    deployment.record("scheduler").stop()
    revive("scheduler")  # should the restart below fail
    restart(deployment, "scheduler")
    assert_tries(api, dag_id, run_id, {})
    assert metadata_db.reschedules(dag_id, run_id, "wait") == 4


def test_worker_killed_right_after_create_the_retry_reuses_the_job(
    api: AirflowApi, aws: Aws, state: State, deployment: Deployment, revive: Any
) -> None:
    """SIGKILL the worker once CreateExportJob has returned (the task is polling its job): the retry reuses that
    job (the id the first try recorded: task_state_store on Airflow 3.3+, an Airflow Variable below), no second
    export."""
    dag_id = "drill_create_in_worker"
    hold_new_jobs(aws, 1)
    created_before, jobs_before = jobs_created(aws), job_ids(aws)
    gets_before = aws.control("stats")["operations"]["GetExportJob"]["requests"]
    run_id = start(api, dag_id)
    ti = wait_until(
        "the create task polling its new job",
        lambda: (
            jobs_created(aws) > created_before
            and aws.control("stats")["operations"]["GetExportJob"]["requests"] > gets_before
            and (ti := task_instance(api, dag_id, run_id, "create"))["state"] == "running"
            and ti
        ),
    )
    (job_id,) = job_ids(aws) - jobs_before
    if records_in_variables(state):
        wait_until("the try's record of its job (an Airflow Variable)", lambda: len(job_records(api, dag_id)) == 1)
    worker = worker_running(deployment, ti)
    deployment.record(worker).kill()
    revive(worker)
    wait_until(
        f"the retry (heartbeat timeout {TASK_HEARTBEAT_TIMEOUT} s)",
        lambda: task_instance(api, dag_id, run_id, "create")["try_number"] == 2,
    )
    aws.control("complete_job", job_id=job_id)
    assert_tries(api, dag_id, run_id, {"create": 2})
    assert job_records(api, dag_id) == [], "the task instance ended: its record must be gone"
    assert jobs_created(aws) - created_before == 1, "the retry started a second export"
    assert api.xcom(dag_id, run_id, "create") == job_id


def logged_job(state: State, dag_id: str, run_id: str, task_id: str, attempt: int, what: str) -> str | None:
    """The JobId in a try's log line ``<what> <JobId>`` (``Started SES export job``, say), once it is there."""
    for log in run_log_folder(state, dag_id, run_id).glob(f"task_id={task_id}/attempt={attempt}*.log"):
        found = re.search(re.escape(what) + r" ([0-9A-Za-z-]+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
    return None


def test_two_tasks_of_one_data_source_a_killed_one_touches_only_its_own_export(
    api: AirflowApi, aws: Aws, state: State
) -> None:
    """Two tasks export exactly the same data, each polling its job in a worker. SIGKILL the processes running the one
    whose job is older: its retry reuses its own job (not the newer one of the same data), and when a user then marks it
    failed, its on_kill cancels its own job. The other task's export is never touched: it completes, on try 1."""
    dag_id = "drill_same_source"
    hold_new_jobs(aws, 2)
    created_before = jobs_created(aws)
    run_id = start(api, dag_id)
    jobs = wait_until(
        "both tasks polling their new jobs",
        lambda: (
            (
                found := {
                    t: logged_job(state, dag_id, run_id, t, 1, "Started SES export job") for t in ("first", "second")
                }
            )
            and all(found.values())
            and all(task_instance(api, dag_id, run_id, t)["state"] == "running" for t in found)
            and found
        ),
    )
    assert jobs["first"] != jobs["second"] and jobs_created(aws) - created_before == 2
    if records_in_variables(state):
        wait_until("each task instance's record (an Airflow Variable)", lambda: len(job_records(api, dag_id)) == 2)
    order = [j["JobId"] for j in aws.control("jobs")["jobs"]]  # oldest first
    victim, other = sorted(jobs, key=lambda t: order.index(jobs[t]))  # the newer job is what data matching found
    # SIGKILL the task and the process that runs and reports it (Airflow 2: `airflow tasks run`; 3: the task
    # supervisor): nothing of the try is left to report, as when its worker dies (Airflow 3.0 fails a task whose
    # process alone was killed without a retry), while the other task runs on
    task_pid = int(task_instance(api, dag_id, run_id, victim)["pid"])
    runner = parent_pid(task_pid)
    assert runner, f"{victim}'s process {task_pid} has no parent"
    for pid in (runner, task_pid):
        os.kill(pid, signal.SIGKILL)
    reused = wait_until(
        f"{victim}'s retry reusing a job",
        lambda: (
            task_instance(api, dag_id, run_id, victim)["state"] == "running"
            and logged_job(state, dag_id, run_id, victim, 2, "Reusing SES export job")
        ),
    )
    assert reused == jobs[victim], f"{victim}'s retry adopted {other}'s export"
    # a user marks the retry failed: the worker kills it, calling its on_kill (API v1's PATCH defaults to a dry run)
    mark_failed = {"new_state": "failed", **({} if state.airflow_3 else {"dry_run": False})}
    api.request("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{victim}", json=mark_failed)
    statuses = wait_until(
        f"{victim}'s on_kill cancelling a job",
        lambda: (
            (found := {j["JobId"]: j["JobStatus"] for j in aws.control("jobs")["jobs"]})
            and "CANCELLED" in (found[jobs[victim]], found[jobs[other]])
            and found
        ),
    )
    assert statuses[jobs[victim]] == "CANCELLED", f"{victim}'s on_kill did not cancel its own job: {statuses}"
    assert statuses[jobs[other]] == "PROCESSING", f"{victim} touched {other}'s export: {statuses}"
    aws.control("complete_job", job_id=jobs[other])
    api.wait_for_run(dag_id, run_id)
    tis = {t: task_instance(api, dag_id, run_id, t) for t in (victim, other)}
    tries = {t: (ti["state"], ti["try_number"]) for t, ti in tis.items()}
    assert tries == {victim: ("failed", 2), other: ("success", 1)}
    assert api.xcom(dag_id, run_id, other) == jobs[other]
    assert jobs_created(aws) - created_before == 2, "the killed task's retry started a second export"
    assert job_records(api, dag_id) == [], "both task instances ended: their records must be gone"


def test_deferred_create_retried_after_its_wait_failed_reuses_the_job(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws
) -> None:
    """A deferrable create whose wait fails in the triggerer (GetExportJob and ListExportJobs denied once the wait
    runs): the task fails that try, and the retry runs ``execute`` again, reusing the job, no second export."""
    dag_id = "drill_create_deferred"
    hold_new_jobs(aws, 1)
    created_before, jobs_before = jobs_created(aws), job_ids(aws)
    run_id = start(api, dag_id)
    wait_until("the wait running in a triggerer", lambda: any(t[2] for t in metadata_db.triggers(dag_id, run_id)))
    aws.control("set_faults", deny_operations=["GetExportJob", "ListExportJobs"])
    try:
        wait_until("the failed try", lambda: task_instance(api, dag_id, run_id, "create")["state"] == "up_for_retry")
    finally:
        aws.control("clear_faults")  # before the retry starts (retry_delay 15 s)
    (job_id,) = job_ids(aws) - jobs_before
    wait_until("the retry waiting again", lambda: task_instance(api, dag_id, run_id, "create")["try_number"] == 2)
    aws.control("complete_job", job_id=job_id)
    assert_tries(api, dag_id, run_id, {"create": 2})
    assert jobs_created(aws) - created_before == 1, "the retry started a second export"
    assert api.xcom(dag_id, run_id, "create") == job_id


@pytest.mark.newest_image_only
def test_throttle_storm_under_50_deferred_waits(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws, state: State
) -> None:
    """A 60 s storm of 429s on every SES call while 50 deferred waits are in flight: all succeed on try 1.

    Real SES allows 20 unfinished jobs per source type, so the 50 waits are on as many metrics and Message Insights
    jobs as that leaves room for, some waited for twice (two DAGs gating on one export)."""
    jobs: list[str] = []
    try:
        sources = (("METRICS_DATA", aws.create_metrics_job), ("MESSAGE_INSIGHTS", aws.create_insights_job))
        for source_type, create in sources:
            room = 20 - len(aws.unfinished_jobs(source_type))
            hold_new_jobs(aws, room, source_type)
            jobs += create_jobs(aws, create, room)
        assert len(jobs) >= 25, "too many unfinished jobs left for the drill's own"
        _ride_out_the_storm(api, metadata_db, aws, state, jobs, waited=(jobs * 2)[:50])
    finally:  # a failed drill leaves no job holding an export slot
        for job_id in set(jobs) & set(aws.unfinished_jobs("METRICS_DATA") + aws.unfinished_jobs("MESSAGE_INSIGHTS")):
            aws.control("complete_job", job_id=job_id)


def _ride_out_the_storm(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws, state: State, jobs: list[str], waited: list[str]
) -> None:
    dag_id = "drill_deferred_waits"
    run_id = start(api, dag_id, {"job_ids": waited})
    wait_until(
        "50 waits in the triggerers",
        lambda: len([t for t in metadata_db.triggers(dag_id, run_id) if t[2]]) == 50,
        timeout=600,
    )
    throttled_before = aws.control("stats")["total_throttled"]
    aws.control("throttle_all", seconds=60.0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert api.run(dag_id, run_id)["state"] == "running"
        time.sleep(2)
    assert aws.control("stats")["total_throttled"] - throttled_before > 0, "the storm hit no poll"
    assert len(metadata_db.triggers(dag_id, run_id)) == 50  # every wait rode the storm out
    for job_id in jobs:
        aws.control("complete_job", job_id=job_id)
    assert_tries(api, dag_id, run_id, {})
    assert_one_event_each(state, dag_id, run_id, 50)
