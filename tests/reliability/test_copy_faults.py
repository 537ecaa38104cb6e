"""
Fault table, download rows: ``wait >> result >> copy`` in a real Airflow run, with the export URL expired
before the copy downloads and expiring while it downloads. S3 is moto's server on 127.0.0.1.

The URL the result task pushed to XCom is never used by the copy (it calls GetExportJob itself); these
rows make even the copy's own fresh URL go bad at the worst moments and check the stored object is
complete and byte-identical, in one try.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from tests.reliability.conftest import SCALE
from tests.reliability.helpers import START, create_job, state_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ses_export_emulator(time_scale=SCALE, processing_seconds=1, create_rate_limit=None, row_multiplier=100),
]


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    conn = {"conn_type": "aws", "login": "testing", "password": "testing"}
    conn["extra"] = {"region_name": "us-east-1", "endpoint_url": moto_endpoint}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_S3", json.dumps(conn))
    name = f"rel-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    ).create_bucket(Bucket=name)
    return name


def _stored(moto_endpoint: str, bucket: str, key: str) -> bytes:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _export_bytes(emu: Any, job_id: str) -> bytes:
    import requests

    url = emu.client().get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def _copy_dag(dag_id: str, job_id: str, bucket: str) -> Any:
    import datetime as dt

    from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
    from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
    from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
    from tests.airflow_names import DAG

    retry: dict[str, Any] = {"retries": 2, "retry_delay": dt.timedelta(seconds=0)}
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        wait = SesExportJobSensor(task_id="wait", job_id=job_id, poke_interval=0.1, timeout=60, **retry)
        result = SesExportJobResultOperator(task_id="result", job_id=job_id, **retry)
        copy = SesExportToS3Operator(
            task_id="copy",
            job_id=job_id,
            s3_bucket=bucket,
            s3_key="ses/export.csv",
            dest_aws_conn_id="moto_s3",
            chunk_size=512,
            **retry,
        )
        wait >> result >> copy
    return dag


def _assert_copied_in_one_try(dr: Any, expected: bytes, stored: bytes) -> None:
    copy = dr.get_task_instance("copy")
    assert [state_of(dr.get_task_instance(t)) for t in ("wait", "result", "copy")] == ["success"] * 3
    assert copy.try_number == 1, "the copy spent a retry"
    assert stored == expected, f"stored {len(stored)} bytes, expected {len(expected)}"
    assert copy.xcom_pull(task_ids="copy", key="size_bytes") == len(expected)


def test_url_expired_before_the_download(
    ses_export_emulator: Any,
    bucket: str,
    moto_endpoint: str,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The URL in XCom is long dead, and so is the copy's first fresh URL by the time it downloads."""
    emu = ses_export_emulator
    job_id = create_job(emu)
    emu.complete_job(job_id)
    expected = _export_bytes(emu, job_id)
    assert len(expected) > 512 * 4  # several chunks
    fresh = SesExportJobHook._fresh_export_url
    fetched: list[str] = []

    def fresh_then_expired(hook: SesExportJobHook, job: str, *given: Any) -> Any:
        out = fresh(hook, job, *given)
        fetched.append(job)
        if len(fetched) == 1:
            emu.expire_urls()  # every URL issued so far, the XCom one and this one, is now expired
        return out

    monkeypatch.setattr(SesExportJobHook, "_fresh_export_url", fresh_then_expired)
    emu.reset_stats()
    dr = run_dag(_copy_dag(dag_id, job_id, bucket))
    _assert_copied_in_one_try(dr, expected, _stored(moto_endpoint, bucket, "ses/export.csv"))
    downloads = emu.stats()["downloads"]
    assert downloads["denied"] >= 1, "no download was refused: the row did not test an expired URL"
    assert len(fetched) >= 2, "the expired URL was not replaced by a fresh one"


def test_url_expires_during_the_download(
    ses_export_emulator: Any,
    bucket: str,
    moto_endpoint: str,
    run_dag: Any,
    dag_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The URL dies while its response streams, then the connection drops mid-file: resume with a fresh URL."""
    from airflow_provider_sesexport.hooks._download import ExportStream

    emu = ses_export_emulator
    job_id = create_job(emu)
    emu.complete_job(job_id)
    expected = _export_bytes(emu, job_id)
    emu.set_faults(download_drop_after=len(expected) // 2 + 1)
    chunks = [0]
    next_chunk = ExportStream.__next__

    def expire_on_first_chunk(stream: Any) -> bytes:
        chunk = next_chunk(stream)
        chunks[0] += 1
        if chunks[0] == 1:
            emu.expire_urls()
        return chunk

    monkeypatch.setattr(ExportStream, "__next__", expire_on_first_chunk)
    emu.reset_stats()
    dr = run_dag(_copy_dag(dag_id, job_id, bucket))
    emu.clear_faults()
    _assert_copied_in_one_try(dr, expected, _stored(moto_endpoint, bucket, "ses/export.csv"))
    downloads = emu.stats()["downloads"]
    assert downloads["dropped"] >= 1, "the download never dropped: the row did not test a mid-file failure"
    assert chunks[0] > 1
