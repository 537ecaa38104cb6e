"""SesExportToS3Operator in a real Airflow (dag.test()): stale XCom URL, failures without retries, outlets, links."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_sesexport._compat import AssetOrDataset
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.links import S3ObjectLink
from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from tests.airflow_names import AIRFLOW_V_3, DAG, task
from tests.conftest import task_states
from tests.e2e.conftest import create_job, try_number, xcom
from tests.e2e.test_transfer_example import asset_rows
from tests.integration.conftest import MotoS3

pytestmark = pytest.mark.e2e
#: Spelled in pieces: this module's source is stored as DAG code, which the session's leak check scans.
SIGNATURE_PARAM = "-".join(["X", "Amz", "Signature"]) + "="
START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def run_copy(run_dag: Callable[..., Any], dag_id: str, **copy_kwargs: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesExportToS3Operator(task_id="copy", retries=2, retry_delay=dt.timedelta(seconds=0), **copy_kwargs)
    if not AIRFLOW_V_3:  # as the DAG processor would: the DAG and its Dataset outlets in the metadata DB
        from airflow.models.dag import DAG as DagClass

        DagClass.bulk_write_to_db([dag])
    return run_dag(dag)


def completed_job(emu: Any) -> str:
    job_id = create_job(emu)
    emu.complete_job(job_id)
    return job_id


@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_copy_after_the_xcom_url_expired(
    run_dag: Callable[..., Any], ses_export_emulator: Any, moto_s3: MotoS3, task_logs: Callable[[], str]
) -> None:
    """The result task's URL is dead (300 s x 0.01) by the time the copy runs; the copy fetches its own."""
    job_id = completed_job(ses_export_emulator)
    with DAG(dag_id="transfer_after_expiry", schedule=None, start_date=START, catchup=False) as dag:
        result = SesExportJobResultOperator(task_id="result", job_id=job_id)

        @task
        def queued_for_a_while() -> None:
            time.sleep(3.5)  # longer than the URL's scaled lifetime of 3 s

        copy = SesExportToS3Operator(
            task_id="copy",
            job_id="{{ ti.xcom_pull(task_ids='result', key='job_id') }}",
            s3_bucket=moto_s3.bucket,
            s3_key="exports/{{ ds }}/data.csv",
            dest_aws_conn_id=moto_s3.conn_id,
        )
        result >> queued_for_a_while() >> copy

    dr = run_dag(dag)

    assert task_states(dr) == {"result": "success", "queued_for_a_while": "success", "copy": "success"}
    stale_url = xcom(dr, "result", "s3_url")
    assert requests.get(stale_url, timeout=10).status_code == 403  # really expired
    fresh = ses_export_emulator.client().get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    key = xcom(dr, "copy", "s3_uri").split("/", 3)[3]
    assert moto_s3.get(key) == requests.get(fresh, timeout=10).content
    logs = task_logs()
    assert "Copied SES export job" in logs
    assert SIGNATURE_PARAM not in logs


def test_literal_destination_is_an_outlet_with_extra(
    run_dag: Callable[..., Any], ses_export_emulator: Any, moto_s3: MotoS3
) -> None:
    job_id = completed_job(ses_export_emulator)
    dr = run_copy(
        run_dag,
        "transfer_literal_outlet",
        job_id=job_id,
        dest=f"s3://{moto_s3.bucket}/fixed/latest.csv",
        dest_aws_conn_id=moto_s3.conn_id,
    )
    assert task_states(dr) == {"copy": "success"}
    events, _ = asset_rows(f"s3://{moto_s3.bucket}/fixed/latest.csv")
    assert len(events) == 1
    assert events[0]["extra"]["size_bytes"] == xcom(dr, "copy", "size_bytes") > 0
    assert events[0]["extra"]["job_id"] == job_id


def test_existing_object_fails_without_retries_unless_replace(
    run_dag: Callable[..., Any], ses_export_emulator: Any, moto_s3: MotoS3
) -> None:
    job_id = completed_job(ses_export_emulator)
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="out.csv", Body=b"yesterday")
    common = {"job_id": job_id, "s3_bucket": moto_s3.bucket, "s3_key": "out.csv", "dest_aws_conn_id": moto_s3.conn_id}

    dr = run_copy(run_dag, "transfer_no_replace", **common)
    assert task_states(dr) == {"copy": "failed"}
    assert try_number(dr, "copy") == 1  # AirflowFailException: no retries spent
    assert moto_s3.get("out.csv") == b"yesterday"

    dr = run_copy(run_dag, "transfer_replace", replace=True, **common)
    assert task_states(dr) == {"copy": "success"}
    assert moto_s3.get("out.csv") != b"yesterday"
    assert len(moto_s3.get("out.csv")) == xcom(dr, "copy", "size_bytes")


# the test corrupts Statistics.ExportedRecordsCount, which real SES leaves out
@pytest.mark.ses_export_emulator(exported_records_count=True)
def test_record_count_mismatch_fails_the_task_and_writes_nothing(
    run_dag: Callable[..., Any],
    ses_export_emulator: Any,
    moto_s3: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
    task_logs: Callable[[], str],
) -> None:
    job_id = completed_job(ses_export_emulator)
    original = SesExportJobHook.get_export_job

    def off_by_one(self: SesExportJobHook, job: str) -> dict[str, Any]:
        response = original(self, job)
        response["Statistics"]["ExportedRecordsCount"] += 1
        return response

    monkeypatch.setattr(SesExportJobHook, "get_export_job", off_by_one)
    dr = run_copy(
        run_dag,
        "transfer_mismatch",
        job_id=job_id,
        s3_bucket=moto_s3.bucket,
        s3_key="bad.csv",
        dest_aws_conn_id=moto_s3.conn_id,
    )
    assert task_states(dr) == {"copy": "failed"}
    assert try_number(dr, "copy") == 1
    assert not moto_s3.exists("bad.csv")
    assert "Statistics.ExportedRecordsCount is" in task_logs()


def test_bad_rendered_bucket_fails_before_any_request(
    run_dag: Callable[..., Any], ses_export_emulator: Any, moto_s3: MotoS3, task_logs: Callable[[], str]
) -> None:
    ses_export_emulator.reset_stats()
    dr = run_copy(
        run_dag,
        "transfer_bad_bucket",
        job_id="job-1",
        s3_bucket="{{ 'Not_A_Bucket' }}",
        s3_key="k.csv",
        dest_aws_conn_id=moto_s3.conn_id,
    )
    assert task_states(dr) == {"copy": "failed"}
    assert try_number(dr, "copy") == 1
    assert ses_export_emulator.stats()["total_requests"] == 0
    assert "Invalid s3_bucket='Not_A_Bucket'" in task_logs()


def test_extra_link_points_at_the_object(
    run_dag: Callable[..., Any], ses_export_emulator: Any, moto_s3: MotoS3
) -> None:
    job_id = completed_job(ses_export_emulator)
    dr = run_copy(
        run_dag,
        "transfer_link",
        job_id=job_id,
        s3_bucket=moto_s3.bucket,
        s3_key="a b/c.csv",
        dest_aws_conn_id=moto_s3.conn_id,
    )
    assert task_states(dr) == {"copy": "success"}
    if AIRFLOW_V_3:  # rendered on the worker after the task, stored in XCom for the UI
        link = xcom(dr, "copy", S3ObjectLink().xcom_key)
    else:  # rendered by the webserver from the persisted XCom
        ti = dr.get_task_instance("copy")
        link = S3ObjectLink().get_link(dr.dag.get_task("copy"), ti_key=ti.key)
    assert link == f"https://console.aws.amazon.com/s3/object/{moto_s3.bucket}?region=us-east-1&prefix=a%20b/c.csv"


def test_outlet_class_matches_the_airflow_version() -> None:
    expected = "Asset" if AIRFLOW_V_3 else "Dataset"
    assert type(AssetOrDataset("s3://b/k")).__name__ == expected
