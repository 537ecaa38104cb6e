"""
``example_ses_export_to_s3`` in a real Airflow: create → wait → copy into a moto S3 bucket, the Asset
(Dataset on Airflow 2) event recorded with its extra, the loader DAG queued on it, and then run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from tests.airflow_names import AIRFLOW_V_3
from tests.conftest import register_dag, task_states
from tests.e2e.conftest import xcom
from tests.e2e.run_kinds import RUN_KINDS, expected_window, run_kwargs
from tests.integration.conftest import MotoS3

pytestmark = pytest.mark.e2e

RUN_DATE = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


def at(date: dt.datetime) -> dict[str, Any]:
    return {"logical_date" if AIRFLOW_V_3 else "execution_date": date}


def register_consumer(dag: Any) -> None:
    """Put the loader DAG (and its asset reference) in the metadata DB, as the DAG processor would, unpaused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    if AIRFLOW_V_3:
        register_dag(dag)
    else:
        from airflow.models.dag import DAG

        DAG.bulk_write_to_db([dag])
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag.dag_id).values(is_paused=False))


def asset_rows(uri: str) -> tuple[list[Any], list[str]]:
    """``(events for uri, target dag ids queued on uri)`` from the metadata DB."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3:
        from airflow.models.asset import AssetDagRunQueue as Queue
        from airflow.models.asset import AssetEvent as Event
        from airflow.models.asset import AssetModel as Model

        id_column, queue_column = Event.asset_id, Queue.asset_id
    else:
        from airflow.models.dataset import DatasetDagRunQueue as Queue  # type: ignore[no-redef]
        from airflow.models.dataset import DatasetEvent as Event  # type: ignore[no-redef]
        from airflow.models.dataset import DatasetModel as Model  # type: ignore[no-redef]

        id_column, queue_column = Event.dataset_id, Queue.dataset_id
    with create_session() as session:
        model = session.scalars(select(Model).where(Model.uri == uri)).one()
        events = [
            {"extra": dict(e.extra or {}), "source_dag_id": e.source_dag_id, "source_task_id": e.source_task_id}
            for e in session.scalars(select(Event).where(id_column == model.id))
        ]
        queued = [q.target_dag_id for q in session.scalars(select(Queue).where(queue_column == model.id))]
    return events, queued


# the copy's records are compared with Statistics.ExportedRecordsCount, which real SES leaves out
@pytest.mark.ses_export_emulator(time_scale=0.02, exported_records_count=True)
def test_daily_copy_lands_in_s3_and_triggers_the_loader(
    load_example_dag: Any,
    run_dag: Any,
    ses_export_emulator: Any,
    moto_s3: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_BUCKET", moto_s3.bucket)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_DEST_CONN_ID", moto_s3.conn_id)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "1")
    producer = load_example_dag("example_ses_export_to_s3")
    loader = load_example_dag("example_ses_export_loader")
    register_consumer(loader)

    dr = run_dag(producer, **at(RUN_DATE))

    states = task_states(dr)
    assert states == {"create_export": "success", "wait_for_export": "success", "copy_export": "success"}, states
    job_id = xcom(dr, "create_export")
    uri = xcom(dr, "copy_export")
    # the run of 2026-11-02 exports 2026-11-01 and files it under that day
    key = "ses/vdm/2026-11-01/email_identity.csv"
    assert uri == f"s3://{moto_s3.bucket}/{key}"

    # The object is the export file, byte for byte, and the XComs describe it.
    job = ses_export_emulator.client().get_export_job(JobId=job_id)
    expected = requests.get(job["ExportDestination"]["S3Url"], timeout=30).content
    assert moto_s3.get(key) == expected
    assert xcom(dr, "copy_export", "s3_uri") == uri
    assert xcom(dr, "copy_export", "size_bytes") == len(expected)
    assert xcom(dr, "copy_export", "records") == job["Statistics"]["ExportedRecordsCount"] > 0
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key=key)
    assert xcom(dr, "copy_export", "etag") == head["ETag"].strip('"')
    link = xcom(dr, "copy_export", "sesexport_s3_object")
    assert link["bucket_name"] == moto_s3.bucket and link["key"] == key

    # The outlet's event is in the metadata DB with the copy's details, and the loader is queued on it.
    events, queued = asset_rows(f"s3://{moto_s3.bucket}/ses/vdm")
    assert len(events) == 1, events
    assert events[0]["source_dag_id"] == "example_ses_export_to_s3"
    assert events[0]["source_task_id"] == "copy_export"
    assert events[0]["extra"]["s3_uri"] == uri
    assert events[0]["extra"]["records"] == job["Statistics"]["ExportedRecordsCount"]
    assert queued == ["example_ses_export_loader"]

    loader_run = run_dag(loader, **at(RUN_DATE + dt.timedelta(hours=1)))
    assert task_states(loader_run) == {"load_new_exports": "success"}


@pytest.mark.ses_export_emulator(time_scale=0.02)
@pytest.mark.parametrize("kind", RUN_KINDS)
def test_every_kind_of_run_files_the_export_under_its_first_day(
    kind: str,
    load_example_dag: Any,
    run_dag: Any,
    ses_export_emulator: Any,
    moto_s3: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run with a logical date, one triggered with the UI's defaults and (Airflow 3) one without a logical date:
    each exports one whole UTC day and copies it under that day's date (not the run's ``ds``)."""
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_BUCKET", moto_s3.bucket)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_DEST_CONN_ID", moto_s3.conn_id)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "1")
    producer = load_example_dag("example_ses_export_to_s3")

    dr = run_dag(producer, **run_kwargs(kind))

    states = task_states(dr)
    assert states == {"create_export": "success", "wait_for_export": "success", "copy_export": "success"}, states
    start, end = expected_window(kind, dr)
    source = ses_export_emulator.client().get_export_job(JobId=xcom(dr, "create_export"))["ExportDataSource"]
    assert (source["MetricsDataSource"]["StartDate"], source["MetricsDataSource"]["EndDate"]) == (start, end)
    key = f"ses/vdm/{start:%Y-%m-%d}/email_identity.csv"
    assert xcom(dr, "copy_export") == f"s3://{moto_s3.bucket}/{key}"
    assert moto_s3.get(key)  # the copy is there, under the export's first day
