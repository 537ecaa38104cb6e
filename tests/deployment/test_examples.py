"""Every example DAG in the MWAA-shaped deployment: triggered through the REST API, run by the scheduler on Celery
workers and in the triggerer processes, checked through the API, the metadata DB (read only), the emulator and S3."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tests.deployment.conftest import AirflowApi, Aws, MetadataDb, State, csv_records, midnight

GATE = "example_ses_export_gate"
TO_S3 = "example_ses_export_to_s3"
LOADER = "example_ses_export_loader"
VDM = "example_ses_vdm_daily"
DELIVERABILITY = "example_ses_deliverability_gate"
#: GetExportJob answers that still read PROCESSING: the reschedule sensor pokes this many times before the job ends.
HELD_READS = 3
UTC = dt.timezone.utc
#: The manual runs every example must handle, besides scheduled runs: a REST trigger without a logical date, and a
#: trigger as the UI's dialog makes it with its defaults.
MANUAL_RUNS = ["rest without logical date", "as the ui does"]


def _assert_succeeded(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    run = api.wait_for_run(dag_id, run_id)
    states = api.task_states(dag_id, run_id)
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    for ti in api.task_instances(dag_id, run_id):
        assert ti["try_number"] == 1, ti  # nothing needed a retry
    return states


def _trigger(api: AirflowApi, dag_id: str, kind: str, conf: dict[str, Any] | None = None) -> str:
    """A manual run of ``kind`` (:data:`MANUAL_RUNS`) through the REST API."""
    if kind == "as the ui does":
        # the dialog's defaults: logical date "now" (pre-filled), the data interval inferred by the timetable (the
        # 3.x UI posts to this endpoint; 2.10's trigger form makes the same run: infer_manual_data_interval(now))
        return api.trigger(dag_id, logical_date=dt.datetime.now(UTC), conf=conf)
    return api.trigger(dag_id, logical_date=None, conf=conf)


def _date(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _previous_day(when: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    end = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=1), end


def _expected_window(api: AirflowApi, dag_id: str, run_id: str, kind: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC day a manual run of ``kind`` must export, from the run's dates as the API reports them: the day before
    its logical date, or (Airflow 3 without a logical date, no data interval) the day before its ``run_after``."""
    run = api.run(dag_id, run_id)
    logical_date = _date(run.get("logical_date"))
    if kind == "rest without logical date" and api.state.airflow_3:
        assert logical_date is None and run["data_interval_start"] is None, run
        run_after = _date(run["run_after"])
        assert run_after is not None
        return _previous_day(run_after)
    assert logical_date is not None, run  # Airflow 2's API: a run triggered without one gets "now"
    return _previous_day(logical_date)


def _exported_window(aws: Aws, job_id: str) -> tuple[dt.datetime, dt.datetime]:
    source = aws.ses.get_export_job(JobId=job_id)["ExportDataSource"]["MetricsDataSource"]
    return source["StartDate"].astimezone(UTC), source["EndDate"].astimezone(UTC)


def test_gate_waits_across_real_reschedules(api: AirflowApi, metadata_db: MetadataDb, aws: Aws) -> None:
    """The gate example's reschedule sensor: each poke a separate Celery task run, rescheduled by the scheduler."""
    job_id = aws.create_metrics_job(end=midnight(days_ago=1))
    aws.control("advance_after", job_id=job_id, reads=HELD_READS)
    api.unpause(GATE)

    run_id = api.trigger(GATE, logical_date=dt.datetime.now(dt.timezone.utc), conf={"job_id": job_id})
    _assert_succeeded(api, GATE, run_id)

    # one TaskReschedule row per poke that found the job unfinished
    assert metadata_db.reschedules(GATE, run_id, "wait_for_export") == HELD_READS
    statistics = api.xcom(GATE, run_id, "export_result", "statistics")
    body = aws.export_file(job_id)
    assert statistics["ExportedRecordsCount"] is None  # real SES returns only ProcessedRecordsCount
    report = api.xcom(GATE, run_id, "report")
    assert report == {"records": csv_records(body), "processed_records": statistics["ProcessedRecordsCount"]}
    assert api.xcom(GATE, run_id, "export_result")["job_id"] == job_id


def _scheduled_run(api: AirflowApi, dag_id: str, timeout: float = 300) -> str:
    """The run the scheduler creates for ``dag_id`` (once it is unpaused)."""
    deadline = time.monotonic() + timeout
    while not (runs := [r for r in api.runs(dag_id) if r["run_type"] == "scheduled"]):
        assert time.monotonic() < deadline, f"the scheduler created no run of {dag_id}: {api.runs(dag_id)}"
        time.sleep(2)
    (run,) = runs
    return str(run["dag_run_id"])


def test_copy_lands_in_s3_and_the_asset_event_runs_the_loader(
    api: AirflowApi, metadata_db: MetadataDb, aws: Aws
) -> None:
    """The to-S3 example (reschedule sensor, then the copy) and the loader DAG scheduled on its Asset."""
    api.unpause(LOADER)
    loader_runs_before = {r["dag_run_id"] for r in api.runs(LOADER)}
    aws.control("advance_after", reads=HELD_READS)  # the next job created: the DAG's
    # a scheduled run: unpaused (catchup off), the scheduler creates the run of the latest whole day, yesterday
    assert api.runs(TO_S3) == []
    api.unpause(TO_S3)
    run_id = _scheduled_run(api, TO_S3)
    _assert_succeeded(api, TO_S3, run_id)

    job_id = api.xcom(TO_S3, run_id, "create_export")
    assert metadata_db.reschedules(TO_S3, run_id, "wait_for_export") == HELD_READS
    # it exported yesterday, and filed it under yesterday
    day = midnight(days_ago=1)
    assert _exported_window(aws, job_id) == (day, day + dt.timedelta(days=1))
    # the copy is the emulator's file, byte for byte, and its XComs say so
    key = f"ses/vdm/{day:%Y-%m-%d}/email_identity.csv"
    copied = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    original = aws.export_file(job_id)
    assert copied == original
    assert api.xcom(TO_S3, run_id, "copy_export") == f"s3://{aws.bucket}/{key}"
    assert api.xcom(TO_S3, run_id, "copy_export", "size_bytes") == len(original)
    assert api.xcom(TO_S3, run_id, "copy_export", "records") == csv_records(original)
    assert set(aws.ses.get_export_job(JobId=job_id)["Statistics"]) == {"ProcessedRecordsCount"}

    # the copy's Asset event, in the metadata DB, carries the object's URI, size and records
    (event,) = [e for e in metadata_db.asset_events() if e.get("s3_uri") == f"s3://{aws.bucket}/{key}"]
    assert event["uri"] == f"s3://{aws.bucket}/ses/vdm"
    assert (event["size_bytes"], event["records"]) == (len(original), csv_records(original))

    # ... and it ran the loader DAG, which read the event
    deadline = time.monotonic() + 300
    while not (new := [r for r in api.runs(LOADER) if r["dag_run_id"] not in loader_runs_before]):
        assert time.monotonic() < deadline, "the Asset event started no loader run"
        time.sleep(2)
    (loader_run,) = new
    assert "asset" in loader_run["run_type"] or "dataset" in loader_run["run_type"], loader_run
    _assert_succeeded(api, LOADER, loader_run["dag_run_id"])
    loaded = api.xcom(LOADER, loader_run["dag_run_id"], "load_new_exports")
    assert [(c["s3_uri"], c["records"]) for c in loaded] == [(f"s3://{aws.bucket}/{key}", csv_records(original))]


def test_vdm_daily_waits_in_the_triggerers(
    api: AirflowApi, metadata_db: MetadataDb, exports_db: MetadataDb, aws: Aws, state: State
) -> None:
    """The VDM daily example: six mapped deferrable exports wait as triggers in the triggerer processes."""
    aws.control("add_rule", action="hang", source_type="METRICS_DATA", count=6)  # held until released below
    jobs_before = {j["JobId"] for j in aws.control("jobs")["jobs"]}
    day = midnight(days_ago=1)
    run_id = api.trigger(VDM, logical_date=day)
    api.unpause(VDM)

    # the waits are serialized into the trigger table and picked up by a running triggerer
    deadline = time.monotonic() + 600
    while len(assigned := [t for t in metadata_db.triggers(VDM, run_id) if t[2] is not None]) < 6:
        run = api.run(VDM, run_id)
        assert run["state"] != "failed", api.task_states(VDM, run_id)
        assert time.monotonic() < deadline, f"triggers: {metadata_db.triggers(VDM, run_id)}"
        time.sleep(1)
    triggerers = {t[2] for t in assigned}
    assert triggerers <= metadata_db.running_triggerers(), (triggerers, metadata_db.running_triggerers())
    assert {t[1] for t in assigned} == {"airflow_provider_sesexport.triggers.ses_export.SesExportJobTrigger"}
    deferred = {ti["map_index"] for ti in api.task_instances(VDM, run_id) if ti["state"] == "deferred"}
    assert deferred == set(range(6))
    # a deferred wait holds no worker slot: the Celery task that deferred ends while the trigger waits (the jobs are
    # released only then; on 2.10.3 a trigger firing before that Celery task reports races the executor into a retry)
    while not metadata_db.worker_runs_finished(VDM, run_id, "export_metrics"):
        assert time.monotonic() < deadline, "the deferring Celery tasks never ended"
        time.sleep(1)
    assert {t[2] for t in metadata_db.triggers(VDM, run_id)} == triggerers  # still waiting in the triggerers

    new_jobs = [j["JobId"] for j in aws.control("jobs")["jobs"] if j["JobId"] not in jobs_before]
    assert len(new_jobs) == 6
    for job_id in new_jobs:
        aws.control("complete_job", job_id=job_id)
    states = _assert_succeeded(api, VDM, run_id)
    assert sorted(k for k in states if k.startswith("export_metrics[")) == [f"export_metrics[{i}]" for i in range(6)]
    assert metadata_db.triggers(VDM, run_id) == []  # each wait ended: its trigger is gone

    report = api.xcom(VDM, run_id, "report")
    assert report["exports"] == 6 and set(report["records"]) == set(new_jobs)
    # triggered for yesterday's midnight: the timetable's interval for that logical date is the day before
    window = (day - dt.timedelta(days=1), day)
    assert {_exported_window(aws, job_id) for job_id in new_jobs} == {window}
    for i in range(6):
        key = f"ses/vdm-daily/{window[0]:%Y-%m-%d}/export-{i}.csv"
        assert api.xcom(VDM, run_id, "copy_to_s3", map_index=i) == f"s3://{aws.bucket}/{key}"
        body = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
        job_id = api.xcom(VDM, run_id, "export_metrics", map_index=i)
        assert body == aws.export_file(job_id)
        assert api.xcom(VDM, run_id, "copy_to_s3", "records", map_index=i) == csv_records(body)
        assert report["records"][job_id] == csv_records(body)
        # then loaded into the metrics table in the deployment's own ses_exports database, one row per value
        assert api.xcom(VDM, run_id, "load_to_sql", "job_id", map_index=i) == job_id
        loaded = exports_db.rows("SELECT count(*) FROM ses_vdm_metrics WHERE job_id = %s", job_id)
        assert loaded == [(api.xcom(VDM, run_id, "load_to_sql", "rows", map_index=i),)]
        assert loaded[0][0] > 0


@pytest.mark.parametrize("kind", MANUAL_RUNS)
def test_gate_manual_runs(kind: str, api: AirflowApi, aws: Aws) -> None:
    """The gate, triggered with a job id without a logical date and as the UI does, waits for that job."""
    job_id = aws.create_metrics_job(end=midnight(days_ago=1))
    api.unpause(GATE)
    run_id = _trigger(api, GATE, kind, conf={"job_id": job_id})
    _assert_succeeded(api, GATE, run_id)
    assert api.xcom(GATE, run_id, "export_result")["job_id"] == job_id
    assert api.xcom(GATE, run_id, "report")["records"] == csv_records(aws.export_file(job_id))


def test_gate_refuses_a_trigger_without_a_job_id(api: AirflowApi) -> None:
    """The dialog's defaults without a job id: the API answers 400 naming the param, and no run is created."""
    runs_before = len(api.runs(GATE))
    body: dict[str, Any] = {"conf": {}, **({"logical_date": None} if api.state.airflow_3 else {})}
    answer = api.session.post(f"{api.base}/dags/{GATE}/dagRuns", json=body, timeout=60)
    assert answer.status_code == 400, answer.text
    assert "job_id" in answer.text
    assert len(api.runs(GATE)) == runs_before


@pytest.mark.parametrize("kind", MANUAL_RUNS)
def test_to_s3_manual_runs_file_the_export_under_its_day(kind: str, api: AirflowApi, aws: Aws) -> None:
    """``example_ses_export_to_s3`` triggered without a logical date and as the UI does: one whole UTC day exported
    (the day before the trigger), and the copy's key carries that day, the export's StartDate."""
    api.unpause(TO_S3)
    run_id = _trigger(api, TO_S3, kind)
    _assert_succeeded(api, TO_S3, run_id)

    job_id = api.xcom(TO_S3, run_id, "create_export")
    start, end = _exported_window(aws, job_id)
    assert (start, end) == _expected_window(api, TO_S3, run_id, kind)
    key = f"ses/vdm/{start:%Y-%m-%d}/email_identity.csv"
    assert api.xcom(TO_S3, run_id, "copy_export") == f"s3://{aws.bucket}/{key}"
    assert aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() == aws.export_file(job_id)


@pytest.mark.parametrize("kind", MANUAL_RUNS)
def test_vdm_daily_manual_runs_file_and_load_the_exports_under_their_day(
    kind: str, api: AirflowApi, aws: Aws, exports_db: MetadataDb
) -> None:
    """``example_ses_vdm_daily`` triggered without a logical date and as the UI does: the six exports cover one
    whole UTC day (the day before the trigger), each copy's key carries that day and the table's rows that range."""
    api.unpause(VDM)
    run_id = _trigger(api, VDM, kind)
    _assert_succeeded(api, VDM, run_id)

    expected = _expected_window(api, VDM, run_id, kind)
    for i in range(6):
        job_id = api.xcom(VDM, run_id, "export_metrics", map_index=i)
        start, end = _exported_window(aws, job_id)
        assert (start, end) == expected
        key = f"ses/vdm-daily/{start:%Y-%m-%d}/export-{i}.csv"
        assert api.xcom(VDM, run_id, "copy_to_s3", map_index=i) == f"s3://{aws.bucket}/{key}"
        assert aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() == aws.export_file(job_id)
        rows = exports_db.rows(
            "SELECT DISTINCT export_start, export_end FROM ses_vdm_metrics WHERE job_id = %s", job_id
        )
        assert [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in rows] == [(start, end)]


@pytest.mark.parametrize(
    ("days_ago", "bounces", "complaints", "healthy"),
    [(20, 150, 5, True), (21, 1300, 30, False)],  # of 20,000 sent: 0.75% / 0.025%, then 6.5% / 0.15%
    ids=["healthy day", "breaching day"],
)
def test_deliverability_gate_sends_only_on_a_healthy_day(
    days_ago: int, bounces: int, complaints: int, healthy: bool, api: AirflowApi, aws: Aws
) -> None:
    """The deliverability gate: a metrics export of the day (its wait deferred to a triggerer), the check on a
    Celery worker, and the campaign task run only when the day's rates are below SES's review thresholds."""
    day = midnight(days_ago=days_ago)  # days no other test exports for example.com
    aws.control(
        "set_volumes",
        identity="example.com",
        date=f"{day:%Y-%m-%d}",
        send=20000,
        permanent_bounce=bounces,
        complaint=complaints,
    )
    try:
        api.unpause(DELIVERABILITY)
        # the run of the next morning (06:00 UTC) checks the day before it
        run_id = api.trigger(DELIVERABILITY, logical_date=day + dt.timedelta(days=1, hours=6))
        run = api.wait_for_run(DELIVERABILITY, run_id)
    finally:
        aws.control("clear_volumes")
    states = api.task_states(DELIVERABILITY, run_id)
    assert run["state"] == "success", states
    job_id = api.xcom(DELIVERABILITY, run_id, "create_export")
    assert _exported_window(aws, job_id) == (day, day + dt.timedelta(days=1))
    report = api.xcom(DELIVERABILITY, run_id, "check_deliverability")
    assert report["job_id"] == job_id and report["healthy"] is healthy
    assert report["overall"]["send_volume"] == 20000
    assert report["overall"]["bounce_rate"] == bounces / 20000
    if healthy:
        assert set(states.values()) == {"success"}, states
        assert report["breaches"] == []
        assert api.xcom(DELIVERABILITY, run_id, "send_campaign") == {"sent": True, "checked_job": job_id}
    else:
        assert states["check_deliverability"] == "skipped" and states["send_campaign"] == "skipped", states
        group = {"EMAIL_IDENTITY": "example.com"}
        assert [(b["group"], b["metric"]) for b in report["breaches"]] == [
            ({}, "bounce"),
            ({}, "complaint"),
            (group, "bounce"),
            (group, "complaint"),
        ]
