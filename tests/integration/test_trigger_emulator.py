"""SesExportJobTrigger over HTTP against the emulator on 127.0.0.1, with real aiobotocore clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from typing import Any

import pytest

from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger

pytestmark = [pytest.mark.integration, pytest.mark.ses_export_emulator(time_scale=0.05, create_rate_limit=None)]

SOURCE: dict[str, Any] = {
    "MetricsDataSource": {
        "Dimensions": {"ISP": ["gmail.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc),
        "EndDate": dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc),
    }
}
POLL = 1.0


def create_jobs(emu: Any, n: int) -> list[str]:
    client = emu.client()
    return [
        client.create_export_job(ExportDataSource=SOURCE, ExportDestination={"DataFormat": "CSV"})["JobId"]
        for _ in range(n)
    ]


def ops(emu: Any, op: str) -> int:
    return int(emu.stats()["operations"][op]["requests"])


async def first_event(trigger: SesExportJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


async def wait_until(predicate: Any, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# 30 waits at once: more unfinished jobs of one source type than real SES's 20
@pytest.mark.ses_export_emulator(max_unfinished_jobs=None)
def test_many_waits_share_one_client_and_batch_their_polls(ses_export_emulator: Any) -> None:
    ses_export_emulator.add_rule(action="hang")
    job_ids = create_jobs(ses_export_emulator, 30)
    opened: list[Any] = []

    async def counting_open_client(spec: poller_mod.ClientSpec) -> poller_mod.ClientHandle:
        handle = await poller_mod.open_client(spec)
        opened.append(handle[0])
        return handle

    async def scenario() -> list[dict[str, Any]]:
        poller_mod.use_seams(poller_mod.PollerSeams(open_client=counting_open_client))  # this event loop only
        ses_export_emulator.reset_stats()
        tasks = [asyncio.ensure_future(first_event(SesExportJobTrigger(job_id=j, poll_interval=POLL))) for j in job_ids]
        await wait_until(lambda: ops(ses_export_emulator, "ListExportJobs") >= 6)  # three cycles
        # 30 hanging jobs in one page per status: two ListExportJobs per cycle, no GetExportJob at all
        assert ops(ses_export_emulator, "GetExportJob") == 0
        for job_id in job_ids[:3]:
            ses_export_emulator.complete_job(job_id)
        await asyncio.wait_for(asyncio.gather(*tasks[:3]), 20)
        assert ops(ses_export_emulator, "GetExportJob") == 3  # only the jobs that left the lists
        assert not any(t.done() for t in tasks[3:])
        ses_export_emulator.fail_job(job_ids[3], "Metrics unavailable")
        for job_id in job_ids[4:]:
            ses_export_emulator.complete_job(job_id)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 20))

    events = asyncio.run(scenario())
    assert len(opened) == 1  # one aiobotocore client for 30 waits
    assert [e["status"] for e in events] == ["success"] * 3 + ["failed"] + ["success"] * 26
    assert events[3]["message"] == "Metrics unavailable"
    assert events[0]["summary"]["job_status"] == "COMPLETED"
    assert events[0]["summary"]["s3_url_expires_at"]
    assert "X-Amz-Signature" not in str(events)
    assert ops(ses_export_emulator, "GetExportJob") == 30


# the event's error_code is the model's NotFoundException (real SES: BadRequestException "Invalid JobId")
@pytest.mark.ses_export_emulator(not_found_style="404")
def test_outcomes_over_http(ses_export_emulator: Any) -> None:
    ses_export_emulator.add_rule(action="hang")
    done, failed, cancelled, deleted, late = create_jobs(ses_export_emulator, 5)
    ses_export_emulator.client().cancel_export_job(JobId=cancelled)

    async def scenario() -> list[dict[str, Any]]:
        deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5)
        tasks = [
            asyncio.ensure_future(first_event(SesExportJobTrigger(job_id=j, poll_interval=POLL)))
            for j in (done, failed, cancelled, deleted)
        ]
        tasks.append(
            asyncio.ensure_future(
                first_event(SesExportJobTrigger(job_id=late, poll_interval=POLL, timeout_at=deadline))
            )
        )
        await asyncio.sleep(0.5)
        ses_export_emulator.complete_job(done)
        ses_export_emulator.fail_job(failed, "The identity has no VDM data")
        ses_export_emulator.delete_job(deleted)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 20))

    events = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success", "failed", "cancelled", "error", "timeout"]
    assert events[1]["message"] == "The identity has no VDM data"
    assert events[2]["summary"]["job_status"] == "CANCELLED"
    assert events[3]["error_code"] == "NotFoundException"


def test_throttling_storm_slows_the_wait_but_never_fails_it(ses_export_emulator: Any) -> None:
    ses_export_emulator.add_rule(action="hang")
    (job_id,) = create_jobs(ses_export_emulator, 1)

    async def scenario() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(SesExportJobTrigger(job_id=job_id, poll_interval=POLL)))
        await wait_until(lambda: ops(ses_export_emulator, "ListExportJobs") >= 2)
        ses_export_emulator.throttle_next(3, "ListExportJobs")  # the poller's next 3 listings, however late they come
        await wait_until(
            lambda: ses_export_emulator.stats()["operations"]["ListExportJobs"]["throttled"] >= 3, timeout=60
        )
        ses_export_emulator.complete_job(job_id)  # the control API is not throttled
        return await asyncio.wait_for(task, 60)

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    assert ses_export_emulator.stats()["total_throttled"] == 3


def test_restart_rebuilds_trigger_from_serialized_form(ses_export_emulator: Any) -> None:
    ses_export_emulator.add_rule(action="hang")
    (job_id,) = create_jobs(ses_export_emulator, 1)
    original = SesExportJobTrigger(
        job_id=job_id,
        poll_interval=POLL,
        timeout_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5),
        aws_conn_id="aws_default",
        region_name="us-east-1",
        botocore_config={"retries": {"mode": "standard", "max_attempts": 3}},
    )

    async def first_triggerer() -> tuple[str, dict[str, Any]]:
        task = asyncio.ensure_future(first_event(original))
        await wait_until(lambda: ops(ses_export_emulator, "ListExportJobs") >= 2)
        serialized = original.serialize()
        task.cancel()  # the triggerer goes away
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert poller_mod.active_pollers() == {}  # unsubscribed, client closed
        return serialized

    classpath, kwargs = asyncio.run(first_triggerer())
    ses_export_emulator.complete_job(job_id)  # finishes while no triggerer runs

    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    event = asyncio.run(asyncio.wait_for(first_event(rebuilt), 20))
    assert event["status"] == "success"
    assert event["job_id"] == job_id


def test_access_denied_listing_falls_back_to_get_over_http(ses_export_emulator: Any) -> None:
    """An IAM policy without ses:ListExportJobs: the poller falls back to per-job GetExportJob, all over HTTP."""
    (job_id,) = create_jobs(ses_export_emulator, 1)
    ses_export_emulator.set_faults(deny_operations=["ListExportJobs"])

    async def scenario() -> dict[str, Any]:
        return await asyncio.wait_for(first_event(SesExportJobTrigger(job_id=job_id, poll_interval=POLL)), 30)

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    assert ops(ses_export_emulator, "GetExportJob") >= 1
    assert ops(ses_export_emulator, "ListExportJobs") == 1  # denied once, then never asked again by this poller
