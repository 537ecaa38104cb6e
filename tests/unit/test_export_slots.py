"""
Unit tests for waiting for a free export slot (fact 6) and for cancelling a job that finished meanwhile (fact 9).

Stubber for the sync hook, a fake async client for the trigger; the clock, sleep and jitter are injected, so
nothing here depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import (
    SesExportJobAlreadyFinishedError,
    SesExportJobError,
    SesExportNoSlotError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators import _create_export
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.export_slot import SesExportSlotTrigger
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_slots import SlotWait, backoff
from airflow_provider_sesexport.utils.validation import SesExportInputError, build_create_export_job_request
from tests.unit.responses import job_response
from tests.unit.test_create_operator import (
    EXPECTED_CREATE,
    FakeTI,
    Records,
    make_op,
    metrics_source,
)

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 2
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

T0 = dt.datetime(2026, 11, 1, 6, tzinfo=dt.timezone.utc)
TOO_MANY = (
    "There are too many <METRICS_DATA> export jobs running - either cancel one of the jobs or wait for it to "
    "complete before resubmitting."
)


class Clock:
    """A UTC clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


class Lines:
    """A logger that keeps every formatted info line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def slot_wait(clock: Clock, timeout: float = 3600, cap: float = 30, seed: int = 1) -> SlotWait:
    return SlotWait("METRICS_DATA", timeout, cap, clock=clock, sleep=clock.sleep, rng=random.Random(seed))


def refuse(stubber: Stubber) -> None:
    stubber.add_client_error("create_export_job", "LimitExceededException", TOO_MANY, 400, EXPECTED_CREATE)


def list_unfinished(stubber: Stubber, processing: int, created: int = 0) -> None:
    """The two ListExportJobs calls that count a source type's unfinished jobs (CREATED, then PROCESSING)."""
    for status, n in (("CREATED", created), ("PROCESSING", processing)):
        jobs = [{"JobId": f"{status}-{i}", "ExportSourceType": "METRICS_DATA", "JobStatus": status} for i in range(n)]
        expected = {"ExportSourceType": "METRICS_DATA", "JobStatus": status, "PageSize": 100}
        stubber.add_response("list_export_jobs", {"ExportJobs": jobs}, expected)


# -- the rules ----------------------------------------------------------------------------------------------
def test_no_free_slot_rule_is_the_limit_error_only() -> None:
    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": TOO_MANY}}, "CreateExportJob")

    assert aws_errors.means_no_free_slot(error("LimitExceededException"))
    assert not aws_errors.means_no_free_slot(error("TooManyRequestsException"))  # throttling: paced retries
    assert not aws_errors.means_no_free_slot(error("BadRequestException"))
    assert not aws_errors.means_no_free_slot(RuntimeError(TOO_MANY))


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("BadRequestException", "Cannot cancel an export job that has a <COMPLETED> status.", "COMPLETED"),
        ("BadRequestException", "Cannot cancel an export job that has a <FAILED> status.", "FAILED"),
        ("BadRequestException", "cannot cancel an export job that has a CANCELLED status", "CANCELLED"),
        ("BadRequestException", "Invalid JobId", None),
        ("NotFoundException", "Cannot cancel an export job that has a <COMPLETED> status.", None),
        ("BadRequestException", None, None),
    ],
)
def test_cancel_refusal_rule(code: str, message: str | None, status: str | None) -> None:
    assert aws_errors.finished_status_of_cancel_refusal(code, message) == status


def test_backoff_doubles_is_capped_and_jittered_in_the_upper_half() -> None:
    class Edges:
        """uniform() at its upper edge, then its lower edge."""

        def __init__(self) -> None:
            self.calls: list[tuple[float, float]] = []

        def uniform(self, a: float, b: float) -> float:
            self.calls.append((a, b))
            return b

    edges = Edges()
    ceilings = [backoff(attempt, 30, edges) for attempt in range(1, 8)]  # type: ignore[arg-type]
    assert ceilings == [2, 4, 8, 16, 30, 30, 30]
    assert edges.calls == [(c / 2, c) for c in ceilings]
    assert backoff(50, 1.0, edges) == 1.0  # type: ignore[arg-type]  # the smallest cap (waiter_delay's floor)
    rng = random.Random(3)
    drawn = [backoff(6, 30, rng) for _ in range(200)]
    assert all(15 <= d <= 30 for d in drawn) and len(set(drawn)) == 200  # jittered, never the same pause


def test_slot_wait_counts_from_the_first_refusal_and_stops_at_the_limit() -> None:
    clock = Clock()
    wait = slot_wait(clock, timeout=10, cap=30)
    assert wait.seconds_left() == 10 and wait.started_at is None
    clock.sleep(100)  # time before the first refusal does not count
    pause = wait.next_pause()
    assert wait.started_at == T0 + dt.timedelta(seconds=100) and wait.attempts == 1
    assert pause is not None and 1 <= pause <= 2
    clock.sleep(9)
    assert wait.next_pause() == pytest.approx(1.0)  # never past the limit
    clock.sleep(1)
    assert wait.next_pause() is None and wait.attempts == 3
    error = wait.exhausted()
    assert isinstance(error, SesExportNoSlotError) and isinstance(error, SesExportJobError)
    assert "slot_wait_timeout (10 s)" in str(error) and "3 attempts" in str(error) and "METRICS_DATA" in str(error)


def test_slot_wait_timeout_zero_fails_at_the_first_refusal() -> None:
    wait = slot_wait(Clock(), timeout=0)
    assert wait.next_pause() is None


# -- the worker's wait (create_in_free_slot), Stubber ---------------------------------------------------------
def test_create_waits_for_a_slot_with_one_line_per_attempt(hook: SesExportJobHook, stubber: Stubber) -> None:
    refuse(stubber)
    list_unfinished(stubber, processing=20)
    refuse(stubber)
    list_unfinished(stubber, processing=19, created=1)
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    clock, log = Clock(), Lines()
    wait = slot_wait(clock, cap=30)
    request = build_create_export_job_request(metrics_source(), "CSV")

    assert _create_export.create_in_free_slot(hook, request, wait, log) == "job-1"

    assert len(clock.sleeps) == 2 and 1 <= clock.sleeps[0] <= 2 and 2 <= clock.sleeps[1] <= 4
    assert len(log.lines) == 2
    assert log.lines[0].startswith("No free SES export slot: 20 unfinished METRICS_DATA export jobs (attempt 1)")
    assert log.lines[1].startswith("No free SES export slot: 20 unfinished METRICS_DATA export jobs (attempt 2)")
    assert f"trying again in {clock.sleeps[0]:.1f} s" in log.lines[0]
    assert "3600 s of slot_wait_timeout left" in log.lines[0]


class UpperEdge:
    """Jitter that always draws the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_create_gives_up_with_an_error_naming_slot_wait_timeout(hook: SesExportJobHook, stubber: Stubber) -> None:
    clock, log = Clock(), Lines()
    wait = SlotWait("METRICS_DATA", 20, 5, clock=clock, sleep=clock.sleep, rng=UpperEdge())  # type: ignore[arg-type]
    for _ in range(6):  # pauses 2, 4, 5, 5 and the last 4 s left; the sixth refusal is at the limit
        refuse(stubber)
        list_unfinished(stubber, processing=20)
    request = build_create_export_job_request(metrics_source(), "CSV")
    with pytest.raises(SesExportNoSlotError, match=r"slot_wait_timeout \(20 s\) is used up") as info:
        _create_export.create_in_free_slot(hook, request, wait, log)
    assert clock.sleeps == [2, 4, 5, 5, 4]
    assert len(log.lines) == 5 and wait.attempts == 6
    assert "on every one of 6 attempts since 2026-11-01T06:00:00+00:00" in str(info.value)


def test_create_unknown_count_without_list_permission(hook: SesExportJobHook, stubber: Stubber) -> None:
    refuse(stubber)
    stubber.add_client_error("list_export_jobs", "AccessDeniedException", "not allowed", 403)
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    clock, log = Clock(), Lines()
    request = build_create_export_job_request(metrics_source(), "CSV")
    assert _create_export.create_in_free_slot(hook, request, slot_wait(clock), log) == "job-1"
    assert log.lines[0].startswith("No free SES export slot: an unknown number of unfinished METRICS_DATA")


def test_create_other_errors_are_raised_at_once(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("create_export_job", "BadRequestException", "Invalid date range", 400)
    clock = Clock()
    request = build_create_export_job_request(metrics_source(), "CSV")
    with pytest.raises(SesExportJobError, match="Invalid date range"):
        _create_export.create_in_free_slot(hook, request, slot_wait(clock), Lines())
    assert clock.sleeps == []


# -- the operator ------------------------------------------------------------------------------------------
def test_slot_wait_timeout_is_checked_before_any_request(hook: SesExportJobHook, stubber: Stubber) -> None:
    for bad in (-1, "60", float("inf"), None):
        with pytest.raises(SesExportInputError, match="slot_wait_timeout"):
            make_op(hook, slot_wait_timeout=bad).execute({"ti": FakeTI()})


def fake_slot_wait(op: SesCreateExportJobOperator, clock: Clock) -> None:
    original = op._slot_wait

    def build(started_at: str | None = None, attempts: int = 0) -> SlotWait:
        wait = original(started_at, attempts)
        wait.clock, wait.sleep, wait.rng = clock, clock.sleep, random.Random(5)
        return wait

    op._slot_wait = build  # type: ignore[method-assign]


def test_operator_waits_for_a_slot_and_records_the_job_id(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    refuse(stubber)
    list_unfinished(stubber, processing=3)
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    op = make_op(hook)
    clock = Clock()
    fake_slot_wait(op, clock)
    context = records.context()
    lost = mock.patch.object(hook, "wait_for_export_job", side_effect=ConnectionError("worker lost"))
    with lost, pytest.raises(ConnectionError):
        op.execute(context)  # type: ignore[arg-type]
    assert len(clock.sleeps) == 1
    assert records.recorded(context) == "job-1"  # recorded once created, for the retry


def test_deferrable_operator_waits_for_the_slot_on_the_triggerer(hook: SesExportJobHook, stubber: Stubber) -> None:
    refuse(stubber)
    list_unfinished(stubber, processing=20)
    op = make_op(hook, deferrable=True, waiter_delay=12, slot_wait_timeout=600)
    clock = Clock()
    fake_slot_wait(op, clock)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]

    assert clock.sleeps == []  # no pause in the worker
    assert deferred.value.method_name == "execute_after_slot_wait"
    trigger = deferred.value.trigger
    assert isinstance(trigger, SesExportSlotTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_sesexport.triggers.export_slot.SesExportSlotTrigger"
    assert kwargs["source_type"] == "METRICS_DATA" and kwargs["attempts"] == 1 and kwargs["unfinished"] == 20
    assert kwargs["started_at"] == "2026-11-01T06:00:00+00:00"
    assert kwargs["slot_wait_timeout"] == 600 and kwargs["max_pause"] == 12
    assert kwargs["deferred_try"] == 1  # the try that deferred, echoed in the event
    assert deferred.value.timeout == dt.timedelta(seconds=600 + 300)
    assert SesExportSlotTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_resume_after_a_free_slot_creates_and_waits(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    op = make_op(hook, deferrable=True, waiter_delay=1)
    event = {"status": "free", "source_type": "METRICS_DATA", "started_at": T0.isoformat(), "attempts": 4}
    with pytest.raises(TaskDeferred) as deferred:  # now deferred again, for the job to complete
        op.execute_after_slot_wait({"ti": FakeTI()}, event)  # type: ignore[arg-type]
    assert deferred.value.trigger.job_id == "job-1" and deferred.value.method_name == "execute_complete"


def test_resume_after_a_free_slot_refused_again_defers_again(hook: SesExportJobHook, stubber: Stubber) -> None:
    refuse(stubber)
    list_unfinished(stubber, processing=20)
    op = make_op(hook, deferrable=True)
    clock = Clock()
    fake_slot_wait(op, clock)
    clock.now = T0 + dt.timedelta(seconds=100)
    event = {"status": "free", "source_type": "METRICS_DATA", "started_at": T0.isoformat(), "attempts": 4}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute_after_slot_wait({"ti": FakeTI()}, event)  # type: ignore[arg-type]
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["attempts"] == 5 and kwargs["started_at"] == T0.isoformat()  # the same wait goes on
    assert deferred.value.timeout == dt.timedelta(seconds=3600 - 100 + 300)


def test_resume_after_the_limit_fails_naming_the_parameter(hook: SesExportJobHook, stubber: Stubber) -> None:
    op = make_op(hook, deferrable=True, slot_wait_timeout=60)
    event = {"status": "timeout", "source_type": "METRICS_DATA", "started_at": T0.isoformat(), "attempts": 7}
    with pytest.raises(SesExportNoSlotError, match=r"7 attempts .* slot_wait_timeout \(60 s\)"):
        op.execute_after_slot_wait({"ti": FakeTI()}, event)  # type: ignore[arg-type]


def test_resume_with_a_client_error_event_fails(hook: SesExportJobHook, stubber: Stubber) -> None:
    op = make_op(hook, deferrable=True)
    with pytest.raises(SesExportJobError, match="no credentials"):
        op.execute_after_slot_wait({"ti": FakeTI()}, {"status": "error", "message": "no credentials"})  # type: ignore[arg-type]


def test_an_earlier_tries_event_starts_the_retry_afresh(hook: SesExportJobHook) -> None:
    """Airflow 3.0 resumes the retry of a failed deferred try with that try's event: the retry runs ``execute``
    (which reuses a job an earlier try started) instead of failing on the old event again."""
    op = make_op(hook, deferrable=True)
    stale = {"status": "error", "message": "triggerer lost", "deferred_try": 1}
    context = {"ti": FakeTI(try_number=2)}
    with mock.patch.object(op, "_run", return_value="job-7") as run:
        assert op.execute_after_slot_wait(context, stale) == "job-7"  # type: ignore[arg-type]
    run.assert_called_once_with(context)
    with pytest.raises(SesExportJobError, match="triggerer lost"):  # the same try's event still fails it
        op.execute_after_slot_wait({"ti": FakeTI(try_number=1)}, stale)  # type: ignore[arg-type]


def test_resume_reconnects_to_a_job_recorded_meanwhile(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    """The resumed try still goes through the record: a recorded, running job is reused, not re-created."""
    stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-0"})
    op = make_op(hook, deferrable=True, wait_for_completion=False)
    event = {"status": "free", "source_type": "METRICS_DATA", "started_at": T0.isoformat(), "attempts": 1}
    context = records.context(try_number=2)
    records.seed(context, "job-0")
    assert op.execute_after_slot_wait(context, event) == "job-0"  # type: ignore[arg-type]


def test_on_kill_of_a_job_that_finished_meanwhile_is_an_info_line(hook: SesExportJobHook, stubber: Stubber) -> None:
    op = make_op(hook)
    op.job_id = "job-1"
    stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
    message = "Cannot cancel an export job that has a <COMPLETED> status."
    stubber.add_client_error("cancel_export_job", "BadRequestException", message, 400, {"JobId": "job-1"})
    with mock.patch.object(op.log, "info") as info, mock.patch.object(op.log, "warning") as warning:
        op.on_kill()
    assert warning.call_args_list == []
    assert info.call_args_list == [
        mock.call("SES export job %s finished (%s) before it could be cancelled.", "job-1", "COMPLETED")
    ]


def test_hook_cancel_of_a_finished_job_raises_the_typed_error(hook: SesExportJobHook, stubber: Stubber) -> None:
    message = "Cannot cancel an export job that has a <FAILED> status."
    stubber.add_client_error("cancel_export_job", "BadRequestException", message, 400, {"JobId": "job-1"})
    with pytest.raises(SesExportJobAlreadyFinishedError) as info:
        hook.cancel_export_job("job-1")
    assert (info.value.job_id, info.value.job_status) == ("job-1", "FAILED")
    assert isinstance(info.value, SesExportJobError)


# -- the trigger (fake async client, fake clock and sleep) ---------------------------------------------------
class FakeList:
    """ListExportJobs for the slot trigger: one scripted PROCESSING count per check (CREATED is always empty)."""

    def __init__(self, counts: list[int | Exception]) -> None:
        self.counts = list(counts)
        self.calls: list[dict[str, Any]] = []

    async def list_export_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if kwargs["JobStatus"] == "CREATED":
            return {"ExportJobs": []}
        count = self.counts.pop(0)
        if isinstance(count, Exception):
            raise count
        return {"ExportJobs": [{"JobId": str(i), "JobStatus": "PROCESSING"} for i in range(count)]}


class FakeLoopTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def run_slot_trigger(client: Any, trigger: SesExportSlotTrigger, time: FakeLoopTime) -> tuple[dict[str, Any], int]:
    closed: list[int] = []

    async def open_client(spec: poller_mod.ClientSpec) -> poller_mod.ClientHandle:
        async def close() -> None:
            closed.append(1)

        return client, close

    async def main() -> dict[str, Any]:
        poller_mod.use_seams(
            poller_mod.PollerSeams(open_client=open_client, clock=time.clock, sleep=time.sleep, rng=random.Random(2))
        )
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    with mock.patch("airflow_provider_sesexport.triggers.export_slot.utcnow", return_value=T0):
        return asyncio.run(main()), len(closed)


def slot_trigger(**kwargs: Any) -> SesExportSlotTrigger:
    values: dict[str, Any] = {
        "source_type": "METRICS_DATA",
        "started_at": T0.isoformat(),
        "attempts": 1,
        "unfinished": 20,
        "slot_wait_timeout": 3600,
        "max_pause": 30,
        **kwargs,
    }
    return SesExportSlotTrigger(**values)


def test_trigger_emits_free_once_the_count_drops() -> None:
    client, time = FakeList([20, 21, 20]), FakeLoopTime()
    trigger = slot_trigger()
    with mock.patch.object(trigger.log, "info") as info:
        event, closed = run_slot_trigger(client, trigger, time)
    assert event == {
        "status": "free",
        "source_type": "METRICS_DATA",
        "started_at": T0.isoformat(),
        "attempts": 3,
        "unfinished": 20,  # below the 21 it saw: a job finished
    }
    assert closed == 1
    assert len(time.sleeps) == 3
    assert 1 <= time.sleeps[0] <= 2 and 2 <= time.sleeps[1] <= 4 and 4 <= time.sleeps[2] <= 8  # backoff goes on
    assert all(c["ExportSourceType"] == "METRICS_DATA" and c["PageSize"] == 100 for c in client.calls)
    lines = [call.args[0] % call.args[1:] for call in info.call_args_list]
    assert len(lines) == 3  # one per check
    assert lines[0].startswith("No free SES export slot: 20 unfinished METRICS_DATA export jobs (attempt 2)")
    assert lines[1].startswith("No free SES export slot: 21 unfinished METRICS_DATA export jobs (attempt 3)")
    assert lines[2].startswith("SES export slot check: 20 unfinished METRICS_DATA export jobs (attempt 4)")


def test_trigger_event_names_the_try_that_deferred() -> None:
    event, _ = run_slot_trigger(FakeList([20, 19]), slot_trigger(deferred_try=3), FakeLoopTime())
    assert event["status"] == "free" and event["deferred_try"] == 3


def test_trigger_emits_free_when_it_cannot_count() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListExportJobs")
    event, _ = run_slot_trigger(FakeList([denied]), slot_trigger(), FakeLoopTime())
    assert event["status"] == "free" and event["unfinished"] is None


def test_trigger_emits_timeout_at_the_limit() -> None:
    time = FakeLoopTime()
    # started 50 s ago with a 60 s limit: 10 s of checks left
    trigger = slot_trigger(started_at=(T0 - dt.timedelta(seconds=50)).isoformat(), slot_wait_timeout=60)
    event, closed = run_slot_trigger(FakeList([20] * 50), trigger, time)
    assert event["status"] == "timeout" and closed == 1
    assert sum(time.sleeps) == pytest.approx(10.0)
    assert event["attempts"] == 1 + len(time.sleeps)


def test_trigger_open_client_failure_is_an_error_event() -> None:
    async def fail(spec: poller_mod.ClientSpec) -> poller_mod.ClientHandle:
        raise RuntimeError("no credentials")

    async def main() -> dict[str, Any]:
        poller_mod.use_seams(poller_mod.PollerSeams(open_client=fail))
        async for event in slot_trigger().run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(main())
    assert event["status"] == "error" and "no credentials" in event["message"]
