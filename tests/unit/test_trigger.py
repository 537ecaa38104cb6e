"""Unit tests for SesExportJobTrigger and its shared poller, with a fake async SES client, clock and sleep."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from airflow_provider_sesexport._compat import AirflowSensorTimeout
from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import UNFINISHED_PAGE_SIZE
from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger, summary_from_event
from tests.airflow_names import masker_redact
from tests.unit.responses import PRESIGNED, job_response


def client_error(code: str, status: int, message: str = "boom") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


class FakeSes:
    """An in-memory async stand-in for the aiobotocore sesv2 client; records every call."""

    def __init__(self, page_size: int = 100) -> None:
        self.jobs: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.list_error: Exception | None = None
        self.get_errors: dict[str, Exception] = {}
        self.page_size = page_size

    async def list_export_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("ListExportJobs", kwargs))
        if self.list_error is not None:
            raise self.list_error
        ids = [j for j, s in self.jobs.items() if s == kwargs["JobStatus"]]
        start = int(kwargs.get("NextToken", 0))
        page = ids[start : start + self.page_size]
        out: dict[str, Any] = {"ExportJobs": [{"JobId": j, "JobStatus": kwargs["JobStatus"]} for j in page]}
        if start + self.page_size < len(ids):
            out["NextToken"] = str(start + self.page_size)
        return out

    async def get_export_job(self, JobId: str) -> dict[str, Any]:
        self.calls.append(("GetExportJob", {"JobId": JobId}))
        if JobId in self.get_errors:
            raise self.get_errors[JobId]
        if JobId not in self.jobs:
            raise client_error("NotFoundException", 404, f"Job {JobId} not found")
        return job_response(self.jobs[JobId], job_id=JobId)

    async def cancel_export_job(self, JobId: str) -> dict[str, Any]:
        self.calls.append(("CancelExportJob", {"JobId": JobId}))
        status = self.jobs.get(JobId)
        if status not in ("CREATED", "PROCESSING"):
            raise client_error("BadRequestException", 400, f"Cannot cancel an export job that has a <{status}> status.")
        self.jobs[JobId] = "CANCELLED"
        return {}

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]


class Factory:
    """The pollers' ``open_client`` seam: hands out the fake client, counts opened/closed clients."""

    def __init__(self, client: FakeSes, fail: Exception | None = None) -> None:
        self.client = client
        self.opened = 0
        self.closed = 0
        self.specs: list[poller_mod.ClientSpec] = []
        self.fail = fail

    async def __call__(self, spec: poller_mod.ClientSpec) -> poller_mod.ClientHandle:
        self.specs.append(spec)
        if self.fail is not None:
            raise self.fail
        self.opened += 1

        async def close() -> None:
            self.closed += 1

        return self.client, close


@pytest.fixture
def ses() -> FakeSes:
    return FakeSes()


class FakeTime:
    """The pollers' clock and sleep seams: a sleep moves the clock on at once and only yields to the event loop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


#: Runs a coroutine on a fresh event loop (as a triggerer would) whose pollers use the test's seams.
Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def factory(ses: FakeSes) -> Factory:
    return Factory(ses)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def seams(factory: Factory, fake_time: FakeTime) -> poller_mod.PollerSeams:
    return poller_mod.PollerSeams(
        open_client=factory, clock=fake_time.clock, sleep=fake_time.sleep, rng=random.Random(7)
    )


@pytest.fixture
def run(seams: poller_mod.PollerSeams) -> Run:
    def run_with_seams(coro: Coroutine[Any, Any, Any]) -> Any:
        async def main() -> Any:
            poller_mod.use_seams(seams)
            return await coro

        return asyncio.run(main())

    return run_with_seams


def trigger(job_id: str = "job-1", **kwargs: Any) -> SesExportJobTrigger:
    kwargs.setdefault("poll_interval", 1)
    return SesExportJobTrigger(job_id=job_id, **kwargs)


async def first_event(trig: SesExportJobTrigger) -> dict[str, Any]:
    async for event in trig.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


# -- serialization ----------------------------------------------------------------------------------
def test_serialize_round_trip_keeps_everything() -> None:
    original = SesExportJobTrigger(
        job_id="job-9",
        poll_interval=7,
        timeout_at=dt.datetime(2026, 11, 1, 7, tzinfo=dt.timezone.utc),
        aws_conn_id="ses_conn",
        region_name="eu-west-1",
        verify="/etc/ca.pem",
        botocore_config={"retries": {"mode": "adaptive", "max_attempts": 9}},
        deferred_try=3,
    )
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider_sesexport.triggers.ses_export.SesExportJobTrigger"
    import importlib

    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "job_id": "job-9",
        "poll_interval": 7.0,
        "timeout_at": "2026-11-01T07:00:00+00:00",
        "aws_conn_id": "ses_conn",
        "region_name": "eu-west-1",
        "verify": "/etc/ca.pem",
        "botocore_config": {"retries": {"mode": "adaptive", "max_attempts": 9}},
        "cancel_on_kill": False,
        "deferred_try": 3,
    }
    _, with_cancel = SesExportJobTrigger(job_id="job-9", cancel_on_kill=True).serialize()
    assert SesExportJobTrigger(**with_cancel).serialize()[1] == with_cancel and with_cancel["cancel_on_kill"] is True


def test_serialized_kwargs_are_plain_json() -> None:
    import json

    _, kwargs = trigger(timeout_at="2026-11-01T07:00:00Z", verify=False).serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["timeout_at"] == "2026-11-01T07:00:00Z" or kwargs["timeout_at"].startswith("2026-11-01T07:00:00")


# -- events -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "event_status"), [("COMPLETED", "success"), ("FAILED", "failed"), ("CANCELLED", "cancelled")]
)
def test_terminal_status_emits_event_with_summary(ses: FakeSes, run: Run, status: str, event_status: str) -> None:
    ses.jobs["job-1"] = status
    event = run(first_event(trigger()))
    assert event["status"] == event_status
    assert event["job_id"] == "job-1"
    assert event["summary"]["job_status"] == status
    assert PRESIGNED not in str(event) and "X-Amz-Signature" not in str(event)
    if status == "FAILED":
        assert event["message"] == "Access denied to the metrics"
        assert event["failed_records_url"].endswith("?<redacted>")


def test_running_job_waits_until_it_finishes(ses: FakeSes, run: Run) -> None:
    ses.jobs["job-1"] = "PROCESSING"

    async def scenario() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger()))
        while ses.ops().count("ListExportJobs") < 6:  # three cycles
            await asyncio.sleep(0)
        assert not task.done()
        ses.jobs["job-1"] = "COMPLETED"
        return await task

    event = run(scenario())
    assert event["status"] == "success"
    assert event["summary"]["statistics"] == {"ProcessedRecordsCount": 12, "ExportedRecordsCount": 10}
    # while it was in the PROCESSING list, no GetExportJob was needed
    assert ses.ops().count("GetExportJob") == 1


def test_missing_job_emits_error_event_with_aws_message(ses: FakeSes, run: Run) -> None:
    ses.meta = mock.Mock(region_name="eu-central-2")  # type: ignore[attr-defined]  # the region the client sends to
    event = run(first_event(trigger("ghost", aws_conn_id="ses_probe_5b0e")))
    assert event["status"] == "error"
    assert event["error_code"] == "NotFoundException"
    assert "Job ghost not found" in event["message"]
    assert (event["aws_conn_id"], event["region"]) == ("ses_probe_5b0e", "eu-central-2")
    with pytest.raises(SesExportJobNotFoundError) as err:  # what the sensor and operator raise from the event
        summary_from_event(event, AirflowSensorTimeout)
    assert "'ghost' was not found in region 'eu-central-2'" in str(err.value)
    assert "aws_conn_id='ses_probe_5b0e'" in str(err.value)


def test_deadline_emits_timeout_and_unsubscribes(ses: FakeSes, factory: Factory, run: Run) -> None:
    ses.jobs["job-1"] = "PROCESSING"

    async def scenario() -> tuple[dict[str, Any], dict[Any, Any]]:
        deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=50)
        event = await first_event(trigger(timeout_at=deadline, poll_interval=1))
        # no pause: the trigger let the poller close its client before the event went out
        return event, poller_mod.active_pollers()

    event, pollers = run(scenario())
    assert event["status"] == "timeout"
    assert pollers == {}
    assert factory.closed == 1


def test_deadline_already_passed_times_out_at_once(ses: FakeSes, run: Run) -> None:
    ses.jobs["job-1"] = "PROCESSING"
    event = run(first_event(trigger(timeout_at="2020-01-01T00:00:00+00:00", poll_interval=60)))
    assert event["status"] == "timeout"


def test_client_creation_failure_is_an_error_event(factory: Factory, run: Run) -> None:
    factory.fail = RuntimeError("no credentials")
    event = run(first_event(trigger()))
    assert event["status"] == "error"
    assert "no credentials" in event["message"]


# -- on_kill: the task was killed while deferred ---------------------------------------------------------
@pytest.fixture
def kill_client(ses: FakeSes) -> Factory:
    """The client on_kill opens (its own: the trigger has left the shared poller by then)."""
    return Factory(ses)


def kill(trig: SesExportJobTrigger, open_client: Factory) -> None:
    """Run ``trig.on_kill()`` in an event loop whose pollers' seams open clients with ``open_client``."""

    async def on_kill() -> None:
        poller_mod.use_seams(poller_mod.PollerSeams(open_client=open_client))
        await trig.on_kill()

    asyncio.run(on_kill())


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING"])
def test_on_kill_cancels_a_running_job(ses: FakeSes, kill_client: Factory, status: str) -> None:
    ses.jobs["job-1"] = status
    kill(trigger(cancel_on_kill=True, aws_conn_id="ses", region_name="eu-west-1"), kill_client)
    assert ses.calls == [("GetExportJob", {"JobId": "job-1"}), ("CancelExportJob", {"JobId": "job-1"})]
    assert ses.jobs["job-1"] == "CANCELLED"
    assert (kill_client.opened, kill_client.closed) == (1, 1)
    assert (kill_client.specs[0].aws_conn_id, kill_client.specs[0].region_name) == ("ses", "eu-west-1")


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "CANCELLED"])
def test_on_kill_leaves_a_finished_job_alone(ses: FakeSes, kill_client: Factory, status: str) -> None:
    ses.jobs["job-1"] = status
    kill(trigger(cancel_on_kill=True), kill_client)
    assert ses.ops() == ["GetExportJob"]
    assert ses.jobs["job-1"] == status and kill_client.closed == 1


def test_on_kill_without_cancel_on_kill_does_nothing(ses: FakeSes, kill_client: Factory) -> None:
    """The default, and what the sensor uses: a sensor never cancels a job it did not start."""
    ses.jobs["job-1"] = "PROCESSING"
    kill(trigger(), kill_client)
    assert ses.calls == [] and kill_client.opened == 0
    assert ses.jobs["job-1"] == "PROCESSING"


def test_sensor_trigger_never_cancels(hook: Any) -> None:
    from botocore.stub import Stubber

    from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor

    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    sensor = SesExportJobSensor(task_id="wait", job_id="job-1", deferrable=True, timeout=60)
    sensor.__dict__["hook"] = hook
    with Stubber(hook.conn) as stubber:
        stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})
    assert deferred.value.trigger.serialize()[1]["cancel_on_kill"] is False


@pytest.mark.parametrize(
    ("fail_on", "error"),
    [
        ("open", RuntimeError("no credentials")),
        ("get", client_error("TooManyRequestsException", 429)),
    ],
)
def test_on_kill_errors_are_logged_not_raised(
    ses: FakeSes, monkeypatch: pytest.MonkeyPatch, fail_on: str, error: Any
) -> None:
    ses.jobs["job-1"] = "PROCESSING"
    fac = Factory(ses, fail=error if fail_on == "open" else None)
    if fail_on == "get":
        ses.get_errors["job-1"] = error
    trig = trigger(cancel_on_kill=True)
    with mock.patch.object(trig.log, "warning") as warning:
        kill(trig, fac)
    (call,) = warning.call_args_list
    assert call.args[0].startswith("Could not cancel SES export job") and call.args[1] == "job-1"
    assert fac.closed == fac.opened  # a client it opened is closed again


@pytest.mark.parametrize("finished", ["COMPLETED", "FAILED", "CANCELLED"])
def test_on_kill_of_a_job_that_finished_meanwhile_is_an_info_line(
    ses: FakeSes, monkeypatch: pytest.MonkeyPatch, finished: str
) -> None:
    """The job finishes between GetExportJob and CancelExportJob: SES refuses the cancel, which is no error."""
    ses.jobs["job-1"] = "PROCESSING"
    fac = Factory(ses)
    original_get = ses.get_export_job

    async def get_then_finish(JobId: str) -> dict[str, Any]:
        response = await original_get(JobId)
        ses.jobs[JobId] = finished
        return response

    monkeypatch.setattr(ses, "get_export_job", get_then_finish)
    trig = trigger(cancel_on_kill=True)
    with mock.patch.object(trig.log, "warning") as warning, mock.patch.object(trig.log, "info") as info:
        kill(trig, fac)
    assert warning.call_args_list == []
    (call,) = info.call_args_list
    assert call.args == ("SES export job %s finished (%s) before it could be cancelled.", "job-1", finished)
    assert ses.ops() == ["GetExportJob", "CancelExportJob"] and ses.jobs["job-1"] == finished
    assert fac.closed == fac.opened


# -- shared client and reference counting -------------------------------------------------------------
def test_triggers_with_same_connection_share_one_client_closed_by_last(
    ses: FakeSes, factory: Factory, run: Run
) -> None:
    for i in range(5):
        ses.jobs[f"job-{i}"] = "PROCESSING"

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(first_event(trigger(f"job-{i}"))) for i in range(5)]
        while ses.ops().count("ListExportJobs") < 2:
            await asyncio.sleep(0)
        (poller,) = poller_mod.active_pollers().values()
        assert poller.waiting == 5
        assert factory.opened == 1
        for i in range(4):
            ses.jobs[f"job-{i}"] = "COMPLETED"
        await asyncio.gather(*tasks[:4])
        assert poller.waiting == 1
        assert factory.closed == 0  # one waiter left: the client stays open
        ses.jobs["job-4"] = "COMPLETED"
        await tasks[4]  # no pause: the last trigger out let the client close before its event went out
        assert poller.waiting == 0
        assert poller_mod.active_pollers() == {}
        assert factory.closed == 1

    run(scenario())
    assert (factory.opened, factory.closed) == (1, 1)


def test_different_connections_get_different_clients(ses: FakeSes, factory: Factory, run: Run) -> None:
    ses.jobs["a"] = ses.jobs["b"] = "COMPLETED"

    async def scenario() -> None:
        await asyncio.gather(
            first_event(trigger("a", aws_conn_id="one")),
            first_event(trigger("b", aws_conn_id="two", botocore_config={"read_timeout": 5})),
        )

    run(scenario())
    assert factory.opened == 2
    assert {(s.aws_conn_id, s.botocore_config is not None) for s in factory.specs} == {("one", False), ("two", True)}


def test_cancelled_trigger_unsubscribes_and_last_one_closes_client(ses: FakeSes, factory: Factory, run: Run) -> None:
    ses.jobs["job-1"] = ses.jobs["job-2"] = "PROCESSING"

    async def scenario() -> None:
        t1 = asyncio.ensure_future(first_event(trigger("job-1")))
        t2 = asyncio.ensure_future(first_event(trigger("job-2")))
        while ses.ops().count("ListExportJobs") < 2:
            await asyncio.sleep(0)
        (poller,) = poller_mod.active_pollers().values()
        t1.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t1
        assert poller.waiting == 1 and "job-1" not in poller.waiters
        t2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t2
        assert poller_mod.active_pollers() == {}  # forgotten at once, closing may still be under way
        await poller.wait_closed()

    run(scenario())
    assert factory.closed == 1


def test_two_triggers_for_the_same_job_both_get_the_event(ses: FakeSes, run: Run) -> None:
    ses.jobs["job-1"] = "COMPLETED"

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(first_event(trigger()), first_event(trigger())))

    events = run(scenario())
    assert [e["status"] for e in events] == ["success", "success"]
    assert ses.ops().count("GetExportJob") == 1


def test_new_waiter_after_last_left_opens_a_new_client(ses: FakeSes, factory: Factory, run: Run) -> None:
    ses.jobs["job-1"] = "COMPLETED"

    async def scenario() -> None:
        await first_event(trigger())
        await first_event(trigger())

    run(scenario())
    assert (factory.opened, factory.closed) == (2, 2)


# -- the batched cycle --------------------------------------------------------------------------------
def first_waiter(futures: dict[asyncio.Future[Any], float]) -> asyncio.Future[Any]:
    """A job's first waiter (``ExportJobPoller.waiters`` maps each job to its waiters and their intervals)."""
    return next(iter(futures))


def run_one_cycle(ses: FakeSes, waiting: list[str], **poller_kwargs: Any) -> poller_mod.ExportJobPoller:
    async def scenario() -> poller_mod.ExportJobPoller:
        poller = poller_mod.ExportJobPoller(poller_mod.ClientSpec.of("c", None, None, None), **poller_kwargs)
        poller.client = ses
        for job_id in waiting:
            poller.waiters[job_id] = {asyncio.get_running_loop().create_future(): 0.0}
        await poller.run_cycle()
        return poller

    return asyncio.run(scenario())


def test_cycle_lists_in_flight_and_gets_only_jobs_that_left(ses: FakeSes) -> None:
    ses.page_size = 10
    for i in range(35):
        ses.jobs[f"c{i}"] = "CREATED"
    for i in range(12):
        ses.jobs[f"p{i}"] = "PROCESSING"
    ses.jobs.update({"done1": "COMPLETED", "done2": "FAILED", "other": "COMPLETED"})
    waiting = ["c0", "c34", "p5", "done1", "done2"]
    poller = run_one_cycle(ses, waiting)
    lists = [kw for op, kw in ses.calls if op == "ListExportJobs"]
    assert [kw["JobStatus"] for kw in lists] == ["CREATED"] * 4 + ["PROCESSING"] * 2
    assert all(kw["PageSize"] == UNFINISHED_PAGE_SIZE for kw in lists)
    gets = sorted(kw["JobId"] for op, kw in ses.calls if op == "GetExportJob")
    assert gets == ["done1", "done2"]
    # calls = 2 statuses + extra pages (3 + 1) + jobs that finished (2)
    assert len(ses.calls) == 2 + 4 + 2
    resolved = {j: first_waiter(f).result()["status"] for j, f in poller.waiters.items() if first_waiter(f).done()}
    assert resolved == {"done1": "success", "done2": "failed"}


def test_cycle_cost_does_not_grow_with_waiters(ses: FakeSes) -> None:
    for i in range(300):
        ses.jobs[f"j{i}"] = "PROCESSING"
    run_one_cycle(ses, [f"j{i}" for i in range(300)])
    assert ses.ops() == ["ListExportJobs"] * 4  # CREATED (1 page) + PROCESSING (3 pages), no GetExportJob


def test_access_denied_listing_falls_back_to_paced_gets(
    ses: FakeSes, fake_time: FakeTime, seams: poller_mod.PollerSeams
) -> None:
    ses.list_error = client_error("AccessDeniedException", 403, "not authorized to perform ses:ListExportJobs")
    ses.jobs.update({"a": "PROCESSING", "b": "COMPLETED", "c": "CANCELLED"})
    poller = run_one_cycle(ses, ["a", "b", "c"], fallback_rate=4.0, seams=seams)
    sleeps = fake_time.sleeps
    assert not poller.listing_allowed
    assert ses.ops() == ["ListExportJobs", "GetExportJob", "GetExportJob", "GetExportJob"]
    # one pause per call, jittered around 1/rate
    assert len(sleeps) == 3 and all(0.125 <= s <= 0.375 for s in sleeps)
    assert len(set(sleeps)) > 1
    statuses = {j: first_waiter(f).result()["status"] for j, f in poller.waiters.items() if first_waiter(f).done()}
    assert statuses == {"b": "success", "c": "cancelled"}


def test_fallback_is_sticky_no_more_list_calls(ses: FakeSes, run: Run) -> None:
    ses.list_error = client_error("AccessDeniedException", 403)
    ses.jobs["job-1"] = "PROCESSING"

    async def scenario() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger(poll_interval=1)))
        while ses.ops().count("GetExportJob") < 3:
            await asyncio.sleep(0)
        ses.jobs["job-1"] = "COMPLETED"
        return await task

    event = run(scenario())
    assert event["status"] == "success"
    assert ses.ops().count("ListExportJobs") == 1


@pytest.mark.parametrize(
    "error",
    [
        client_error("TooManyRequestsException", 429, "Too many requests"),
        client_error("InternalFailure", 500),
    ],
)
def test_throttled_listing_slows_down_and_never_fails(
    ses: FakeSes, seams: poller_mod.PollerSeams, error: ClientError
) -> None:
    ses.list_error = error
    ses.jobs["a"] = "COMPLETED"

    async def scenario() -> tuple[poller_mod.ExportJobPoller, list[float]]:
        poller = poller_mod.ExportJobPoller(poller_mod.ClientSpec.of("c", None, None, None), seams=seams)
        poller.client = ses
        future = asyncio.get_running_loop().create_future()
        poller.waiters["a"] = {future: 2.0}
        delays = []
        for _ in range(3):
            await poller.run_cycle()
            delays.append(poller._next_delay())
        assert not future.done()
        ses.list_error = None
        await poller.run_cycle()
        assert future.result()["status"] == "success"
        assert poller.backoff_level == 0
        return poller, delays

    _poller, delays = asyncio.run(scenario())
    assert ses.ops().count("GetExportJob") == 1
    # backoff grows: level 1, 2, 3 → up to 4, 8, 16 s (jittered, never below the interval)
    assert 2.0 <= delays[0] <= 4.0 and 4.0 <= delays[1] <= 8.0 and 8.0 <= delays[2] <= 16.0


def test_throttled_get_leaves_job_waiting(ses: FakeSes) -> None:
    ses.jobs["a"] = "COMPLETED"
    ses.get_errors["a"] = client_error("TooManyRequestsException", 429)
    poller = run_one_cycle(ses, ["a"])
    assert not first_waiter(poller.waiters["a"]).done()
    assert poller.backoff_level == 1


def test_non_transient_listing_error_fails_every_wait(ses: FakeSes) -> None:
    ses.list_error = client_error("BadRequestException", 400, "bad token")
    poller = run_one_cycle(ses, ["a", "b"])
    events = [first_waiter(f).result() for f in poller.waiters.values()]
    assert [e["status"] for e in events] == ["error", "error"]
    assert "bad token" in events[0]["message"]


def test_unknown_status_keeps_waiting(ses: FakeSes, caplog: pytest.LogCaptureFixture) -> None:
    ses.jobs["a"] = "ARCHIVING"
    with caplog.at_level("WARNING"):
        poller = run_one_cycle(ses, ["a"])
    assert not first_waiter(poller.waiters["a"]).done()
    assert "ARCHIVING" in caplog.text


def test_shorter_interval_is_used() -> None:
    async def scenario() -> float:
        poller = poller_mod.ExportJobPoller(poller_mod.ClientSpec.of("c", None, None, None))
        loop = asyncio.get_running_loop()
        poller.waiters["a"] = {loop.create_future(): 30.0, loop.create_future(): 30.0}
        poller.waiters["b"] = {loop.create_future(): 5.0}
        return poller.interval

    assert asyncio.run(scenario()) == 5.0


class TimedSes(FakeSes):
    """The fake SES client, also noting the fake clock's time of every call."""

    def __init__(self, time: FakeTime | ManualTime) -> None:
        super().__init__()
        self.time = time
        self.at: list[tuple[float, str, str | None]] = []

    async def list_export_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.at.append((self.time.now, "ListExportJobs", None))
        return await super().list_export_jobs(**kwargs)

    async def get_export_job(self, JobId: str) -> dict[str, Any]:
        self.at.append((self.time.now, "GetExportJob", JobId))
        return await super().get_export_job(JobId)

    def cycle_times(self) -> list[float]:
        """When each cycle ran (each lists CREATED once)."""
        return [t for t, op, _ in self.at if op == "ListExportJobs"][::2]

    def gets(self, job_id: str) -> list[float]:
        return [t for t, op, j in self.at if op == "GetExportJob" and j == job_id]


def timed_run(fake_time: FakeTime, scenario: Callable[[TimedSes], Coroutine[Any, Any, Any]]) -> TimedSes:
    """Run ``scenario`` on a fresh loop whose pollers use a :class:`TimedSes` and the fake clock."""
    ses = TimedSes(fake_time)
    seams = poller_mod.PollerSeams(
        open_client=Factory(ses), clock=fake_time.clock, sleep=fake_time.sleep, rng=random.Random(7)
    )

    async def main() -> None:
        poller_mod.use_seams(seams)
        await scenario(ses)

    asyncio.run(main())
    return ses


async def until(fake_time: FakeTime, when: float) -> None:
    """Let the event loop run until the fake clock reaches ``when``."""
    while fake_time.now < when:
        await asyncio.sleep(0)


def test_each_wait_is_polled_at_its_own_pace(fake_time: FakeTime) -> None:
    """
    Two waits share the poller, one at 1 s and one at 30 s: the 1 s wait does not make the 30 s wait's job be
    fetched any sooner than its own interval, and a cycle costs 2 + pages + finished jobs calls.
    """
    events: dict[str, dict[str, Any]] = {}

    async def scenario(ses: TimedSes) -> None:
        ses.jobs.update({"fast": "PROCESSING", "slow": "PROCESSING"})
        fast = asyncio.ensure_future(first_event(trigger("fast", poll_interval=1)))
        slow = asyncio.ensure_future(first_event(trigger("slow", poll_interval=30)))
        await until(fake_time, 10)
        ses.jobs["slow"] = "COMPLETED"  # leaves the lists at t=10; its wait asks again at t=30 only
        events["slow"] = await slow
        await until(fake_time, 45)
        ses.jobs["fast"] = "COMPLETED"
        events["fast"] = await fast

    ses = timed_run(fake_time, scenario)
    assert events["slow"]["status"] == events["fast"]["status"] == "success"
    assert ses.gets("slow") == [30.0]  # its own pace, though the 1 s wait cycled 20 times since it finished
    assert ses.gets("fast") == [45.0]
    assert ses.cycle_times() == [float(t) for t in range(1, 46)]  # the 1 s wait kept its pace too
    for t in ses.cycle_times():
        calls = [op for at, op, _ in ses.at if at == t]
        finished = {30.0: 1, 45.0: 1}.get(t, 0)
        assert len(calls) <= 2 + finished  # one page per status here
        assert calls.count("ListExportJobs") == 2 and calls.count("GetExportJob") == finished


def test_the_poller_rests_at_the_pace_of_the_waits_there_are_now(fake_time: FakeTime) -> None:
    """Once the 1 s wait has ended, the poller cycles every 30 s (the remaining wait's interval), not every second."""

    async def scenario(ses: TimedSes) -> None:
        ses.jobs.update({"fast": "PROCESSING", "slow": "PROCESSING"})
        fast = asyncio.ensure_future(first_event(trigger("fast", poll_interval=1)))
        slow = asyncio.ensure_future(first_event(trigger("slow", poll_interval=30)))
        await until(fake_time, 5)
        ses.jobs["fast"] = "COMPLETED"
        assert (await fast)["status"] == "success"
        await until(fake_time, 95)
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)

    ses = timed_run(fake_time, scenario)
    # (the fake clock jumps a whole pause at once: the cycle after 90 s may run before the wait is cancelled)
    assert ses.cycle_times()[:8] == [1.0, 2.0, 3.0, 4.0, 5.0, 30.0, 60.0, 90.0]
    assert all(t % 30 == 0 for t in ses.cycle_times()[5:])
    assert ses.gets("slow") == []


def test_waits_of_one_interval_share_cycles_whenever_they_started(fake_time: FakeTime) -> None:
    """
    Triggers arrive at any time: a job is due on its interval's grid (multiples of it on the clock), not an
    interval after its own start, or N waits would each cost a cycle of 2 + pages calls per interval.
    """

    async def scenario() -> None:
        seams = poller_mod.PollerSeams(open_client=Factory(FakeSes()), clock=fake_time.clock, sleep=fake_time.sleep)
        poller = poller_mod.ExportJobPoller(poller_mod.ClientSpec.of("c", None, None, None), seams=seams)
        starts = {"a": 0.0, "b": 1.3, "c": 2.9, "d": 4.999, "e": 5.0}
        futures = {}
        for job_id, at in starts.items():
            fake_time.now = at
            futures[job_id] = poller.subscribe(job_id, 5)
        # the first check comes within one interval, and a cycle at 5 s or 10 s takes every job due by then
        assert poller.due == {"a": 5.0, "b": 5.0, "c": 5.0, "d": 5.0, "e": 10.0}
        assert poller.due_jobs(5.0) == ["a", "b", "c", "d"]
        poller._checked(["a", "b", "c", "d"], 5.04)  # the cycle that started a little late
        assert poller.due_jobs(10.0) == ["a", "b", "c", "d", "e"]
        futures["f"] = poller.subscribe("f", 30)  # at 5.0: due at 30, with the 5 s waits' cycle there
        assert poller.due["f"] == 30.0
        for job_id, future in futures.items():
            poller.unsubscribe(job_id, future)

    asyncio.run(scenario())


def test_a_cycle_cut_short_leaves_its_jobs_due(fake_time: FakeTime) -> None:
    """A throttled GetExportJob pushes the next cycle back; the job it was for is asked about again then."""

    async def scenario(ses: TimedSes) -> None:
        ses.jobs["slow"] = "COMPLETED"
        ses.get_errors["slow"] = client_error("TooManyRequestsException", 429)
        slow = asyncio.ensure_future(first_event(trigger("slow", poll_interval=30)))
        await until(fake_time, 30)
        while not ses.gets("slow"):
            await asyncio.sleep(0)
        del ses.get_errors["slow"]
        assert (await slow)["status"] == "success"

    ses = timed_run(fake_time, scenario)
    first, second = ses.gets("slow")
    assert first == 30.0 and 60.0 <= second <= 90.0  # backoff: 30 s to 60 s more at level 1, jittered


class ManualTime:
    """
    Clock and sleep seams where a pause lasts until the test moves the clock past its end (:meth:`advance_to`), so
    a pause can be cut short, as ``asyncio.sleep`` can, and things can happen in the middle of one.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        entry = (self.now + max(delay, 0.0), asyncio.get_running_loop().create_future())
        self.sleepers.append(entry)
        try:
            if delay <= 0:
                await asyncio.sleep(0)
            else:
                await entry[1]
        finally:
            self.sleepers.remove(entry)

    async def advance_to(self, when: float) -> None:
        """Move the clock on to ``when``, ending each pause at its own end time, earliest first."""
        while True:
            await settle()
            ends = [end for end, future in self.sleepers if not future.done()]
            if not ends or min(ends) > when:
                break
            self.now = max(self.now, min(ends))
            for end, future in self.sleepers:
                if end <= self.now and not future.done():
                    future.set_result(None)
        self.now = when
        await settle()


async def settle() -> None:
    """Let every task run until it waits for the clock (or something else)."""
    for _ in range(50):
        await asyncio.sleep(0)


def manual_run(time: ManualTime, scenario: Callable[[TimedSes], Coroutine[Any, Any, Any]]) -> TimedSes:
    """Run ``scenario`` on a fresh loop whose pollers use a :class:`TimedSes` and ``time``."""
    ses = TimedSes(time)
    seams = poller_mod.PollerSeams(open_client=Factory(ses), clock=time.clock, sleep=time.sleep, rng=random.Random(7))

    async def main() -> None:
        poller_mod.use_seams(seams)
        await scenario(ses)

    asyncio.run(main())
    return ses


def test_a_short_wait_joining_mid_pause_is_checked_within_its_own_interval() -> None:
    """
    A 300 s wait alone makes the poller pause until t=300; a 30 s wait subscribing at t=100 is checked at t=120
    (the next multiple of its interval), not when the long wait is next due.
    """
    time = ManualTime()

    async def scenario(ses: TimedSes) -> None:
        ses.jobs.update({"long": "PROCESSING", "short": "COMPLETED"})
        long = asyncio.ensure_future(first_event(trigger("long", poll_interval=300)))
        await time.advance_to(100)
        short = asyncio.ensure_future(first_event(trigger("short", poll_interval=30)))
        await time.advance_to(150)
        assert short.done() and short.result()["status"] == "success"
        long.cancel()
        await asyncio.gather(long, return_exceptions=True)

    ses = manual_run(time, scenario)
    assert ses.gets("short") == [120.0]
    assert ses.cycle_times() == [120.0]  # one cycle, for the short wait; the long one is not due before 300
    assert ses.gets("long") == []


def test_a_wait_joining_during_a_backoff_waits_for_the_backoff() -> None:
    """Waking the poller for a new wait does not cut a throttling backoff short."""
    time = ManualTime()

    async def scenario(ses: TimedSes) -> None:
        ses.jobs.update({"a": "PROCESSING", "b": "COMPLETED"})
        ses.list_error = client_error("TooManyRequestsException", 429)
        a = asyncio.ensure_future(first_event(trigger("a", poll_interval=10)))
        await time.advance_to(10)  # the cycle at 10 s is throttled: the next one comes 10 to 20 s later
        ses.list_error = None
        await time.advance_to(12)
        b = asyncio.ensure_future(first_event(trigger("b", poll_interval=1)))
        await time.advance_to(40)
        assert b.done() and b.result()["status"] == "success"
        a.cancel()
        await asyncio.gather(a, return_exceptions=True)

    ses = manual_run(time, scenario)
    lists = [t for t, op, _ in ses.at if op == "ListExportJobs"]
    assert lists[0] == 10.0
    assert 20.0 <= lists[1] <= 30.0  # not at 13 s, when the new wait was first due
    assert ses.gets("b") == [lists[1]]


def test_a_job_in_an_unknown_status_is_fetched_only_when_due(fake_time: FakeTime) -> None:
    """
    A job in a status SES may add later is in neither list, so each check of it costs a GetExportJob: it is
    checked at its own interval only, not in every cycle of a faster wait.
    """

    async def scenario(ses: TimedSes) -> None:
        ses.jobs.update({"fast": "PROCESSING", "odd": "ARCHIVING"})
        fast = asyncio.ensure_future(first_event(trigger("fast", poll_interval=1)))
        odd = asyncio.ensure_future(first_event(trigger("odd", poll_interval=30)))
        await until(fake_time, 65)
        ses.jobs["odd"] = "COMPLETED"
        assert (await odd)["status"] == "success"
        fast.cancel()
        await asyncio.gather(fast, return_exceptions=True)

    ses = timed_run(fake_time, scenario)
    assert ses.gets("odd") == [30.0, 60.0, 90.0]
    assert len(ses.cycle_times()) >= 65  # the 1 s wait cycled every second meanwhile


def test_unsubscribe_is_idempotent_and_the_last_one_out_closes(ses: FakeSes, factory: Factory, run: Run) -> None:
    ses.jobs["a"] = "PROCESSING"

    async def scenario() -> None:
        poller = poller_mod.get_poller(poller_mod.ClientSpec.of("c", None, None, None))
        first, second = poller.subscribe("a", 0), poller.subscribe("a", 0)
        while not poller.cycles:
            await asyncio.sleep(0)
        poller.unsubscribe("a", first)
        poller.unsubscribe("a", first)
        assert poller.waiting == 1 and not poller.closed and first.cancelled()
        poller.unsubscribe("a", second)
        assert poller.closed and second.cancelled()
        assert poller_mod.active_pollers() == {}
        await poller.wait_closed()
        poller.unsubscribe("a", second)
        poller.unsubscribe("b", second)

    run(scenario())
    assert (factory.opened, factory.closed) == (1, 1)


def test_last_waiter_leaving_interrupts_a_long_pause(ses: FakeSes, factory: Factory) -> None:
    """A poller pausing between cycles stops at once when its last waiter leaves, and closes its client."""
    pausing = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        pausing.set()
        await asyncio.Event().wait()

    async def scenario() -> None:
        poller_mod.use_seams(poller_mod.PollerSeams(open_client=factory, sleep=endless_sleep))
        poller = poller_mod.get_poller(poller_mod.ClientSpec.of("c", None, None, None))
        future = poller.subscribe("a", 3600)
        await asyncio.wait_for(pausing.wait(), 5)
        poller.unsubscribe("a", future)
        await asyncio.wait_for(poller.wait_closed(), 5)
        assert factory.closed == 1

    asyncio.run(scenario())
    assert ses.calls == []  # no cycle ran


def test_last_waiter_leaving_while_the_client_opens_still_closes_it(ses: FakeSes, factory: Factory) -> None:
    opening = asyncio.Event()
    release = asyncio.Event()

    async def slow_open(spec: poller_mod.ClientSpec) -> poller_mod.ClientHandle:
        opening.set()
        await release.wait()
        return await factory(spec)

    async def scenario() -> None:
        poller_mod.use_seams(poller_mod.PollerSeams(open_client=slow_open))
        poller = poller_mod.get_poller(poller_mod.ClientSpec.of("c", None, None, None))
        future = poller.subscribe("a", 0)
        await asyncio.wait_for(opening.wait(), 5)
        poller.unsubscribe("a", future)
        release.set()
        await asyncio.wait_for(poller.wait_closed(), 5)
        assert (factory.opened, factory.closed) == (1, 1)

    asyncio.run(scenario())
    assert ses.calls == []


# -- turning events back into results ------------------------------------------------------------------
def test_summary_from_success_event() -> None:
    summary = {"job_id": "j", "job_status": "COMPLETED"}
    assert summary_from_event({"status": "success", "job_id": "j", "summary": summary}, AirflowSensorTimeout) == summary


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"status": "failed", "job_id": "j", "job_status": "FAILED", "message": "m"}, SesExportJobFailedError),
        ({"status": "cancelled", "job_id": "j", "job_status": "CANCELLED"}, SesExportJobCancelledError),
        ({"status": "timeout", "job_id": "j", "message": "late"}, AirflowSensorTimeout),
        (
            {"status": "error", "job_id": "j", "message": "x", "error_code": "NotFoundException"},
            SesExportJobNotFoundError,
        ),
        ({"status": "error", "job_id": "j", "message": "x"}, SesExportJobError),
        ({"status": "weird"}, SesExportJobError),
        (None, SesExportJobError),
    ],
)
def test_summary_from_event_raises_typed_errors(event: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        summary_from_event(event, AirflowSensorTimeout)


def test_failed_event_error_carries_aws_message() -> None:
    with pytest.raises(SesExportJobFailedError, match="Access denied") as err:
        summary_from_event(
            {"status": "failed", "job_id": "j", "job_status": "FAILED", "message": "Access denied"},
            AirflowSensorTimeout,
        )
    assert err.value.job_id == "j"


# -- bad input, before any poller starts -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"job_id": None}, "job_id"),
        ({"job_id": "None"}, "job_id"),
        ({"job_id": " job "}, "job_id"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"poll_interval": "soon"}, "poll_interval"),
        ({"timeout_at": "tomorrow"}, "timeout_at"),
        ({"timeout_at": 12}, "timeout_at"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], named: str) -> None:
    from airflow_provider_sesexport.utils.validation import SesExportInputError

    kwargs = {"job_id": "job-1", **kwargs}
    with pytest.raises(SesExportInputError, match=named):
        SesExportJobTrigger(**kwargs)


@pytest.mark.parametrize(
    ("event", "try_number", "stale"),
    [
        ({"status": "error", "job_id": "j", "deferred_try": 1}, 2, True),  # Airflow 3.0: a retry resumed with it
        ({"status": "error", "job_id": "j", "deferred_try": 2}, 2, False),
        ({"status": "error", "job_id": "j"}, 2, False),  # from a trigger serialized before deferred_try existed
        (None, 2, False),
    ],
)
def test_resumed_by_a_later_try(event: dict[str, Any] | None, try_number: int, stale: bool) -> None:
    from types import SimpleNamespace

    from airflow_provider_sesexport.triggers.ses_export import resumed_by_a_later_try

    assert resumed_by_a_later_try({"ti": SimpleNamespace(try_number=try_number)}, event) is stale


def test_event_names_the_try_that_deferred(ses: FakeSes, run: Run) -> None:
    ses.jobs["job-1"] = "COMPLETED"
    event = run(first_event(trigger(deferred_try=2)))
    assert event["status"] == "success" and event["deferred_try"] == 2
    assert "deferred_try" not in run(first_event(trigger()))


# -- masking in the triggerer ------------------------------------------------------------------------------
def _masked_by_airflow(line: str) -> str:
    """``line`` as Airflow's real secrets masker writes it."""
    return masker_redact(line)


def _planted_job(status: str, job_id: str) -> tuple[dict[str, Any], str]:
    from tests.leakcheck import plant_url

    job = job_response(status, job_id=job_id)
    url = plant_url()
    if status == "COMPLETED":
        job["ExportDestination"]["S3Url"] = url
    else:
        job["FailureInfo"] = {"ErrorMessage": "Access denied", "FailedRecordsS3Url": url}
    return job, url


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED"])
def test_a_poll_in_the_triggerer_registers_nothing_by_itself(ses: FakeSes, run: Run, status: str) -> None:
    """The triggerer lives for days: a registration recompiles the masker's pattern of every value so far, so a poll
    registers nothing (its event carries no URL); botocore's DEBUG dump is covered by the client's handler below."""
    from tests.leakcheck import find_leaks, secret_values_of

    job, url = _planted_job(status, "job-unmasked")
    line = "third-party line: " + " ".join(secret_values_of(url))
    before = _masked_by_airflow(line)
    assert find_leaks(before, "before")
    ses.jobs["job-unmasked"] = status
    with mock.patch.object(ses, "get_export_job", mock.AsyncMock(return_value=job)):
        event = run(first_event(trigger("job-unmasked")))
    assert event["job_status"] == status
    assert not find_leaks(str(event), "event")
    assert _masked_by_airflow(line) == before  # the poll registered none of the values


@pytest.mark.parametrize("body_logger", ["botocore.parsers", "aiobotocore.parsers"])
def test_the_triggerers_client_registers_answer_urls_before_botocore_parses_them(
    body_logger: str, caplog: pytest.LogCaptureFixture
) -> None:
    """open_client's aiobotocore client has the sync client's ``before-parse`` handler: while botocore logs bodies
    (DEBUG), the raw body's URLs are registered with the masker before it is parsed and logged."""
    import json

    from aiobotocore.session import get_session

    from tests.leakcheck import find_leaks, secret_values_of

    job, url = _planted_job("COMPLETED", "job-raw")
    line = "botocore DEBUG body: " + " ".join(secret_values_of(url))

    async def emit_before_parse() -> None:
        creator = get_session().create_client(
            "sesv2",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="example",
        )
        with mock.patch.object(poller_mod, "get_async_client", mock.AsyncMock(return_value=creator)):
            client, close = await poller_mod.open_client(poller_mod.ClientSpec.of(None, "us-east-1", None, None))
        try:
            await client.meta.events.emit(
                "before-parse.sesv2.GetExportJob",
                operation_model=None,
                response_dict={"body": json.dumps(job, default=str).encode(), "status_code": 200, "headers": {}},
                customized_response_dict={},
            )
        finally:
            await close()

    assert find_leaks(_masked_by_airflow(line), "before")
    asyncio.run(emit_before_parse())  # botocore logs no bodies: nothing registered
    assert find_leaks(_masked_by_airflow(line), "not logged")
    caplog.set_level(logging.DEBUG, logger=body_logger)
    asyncio.run(emit_before_parse())
    assert not find_leaks(_masked_by_airflow(line), "masked")
