"""
SesExportToS3Operator over real HTTP: the SES export emulator as the source, moto's S3 server as the destination.

The operator runs its ``execute`` with a minimal task-instance stand-in (XCom recorder); the full
Airflow runs are in ``tests/e2e``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest
import requests

from airflow_provider_sesexport._compat import AirflowFailException
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.transfers.ses_export_to_s3 import (
    SINGLE_PUT_BYTES,
    SesExportToS3Operator,
    SesExportTransferError,
)
from airflow_provider_sesexport.utils.validation import SesExportInputError
from ses_export_emulator import SesExportEmulator
from tests.integration.conftest import MotoS3

# The copy checks its record count against ExportedRecordsCount, which real SES leaves out. Jobs are completed by
# hand, so real time: URLs live their real five minutes and expire only when a test says so (at the fixtures' default
# scale they lived 3 s, and a stalled CI machine saw one expire on its own).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.ses_export_emulator(
        conn_id="ses_emu", create_rate_limit=None, exported_records_count=True, time_scale=1.0
    ),
]
#: Files ten times the requested MaxResults (Message Insights caps it at 10,000 rows).
BIG_FILES = pytest.mark.ses_export_emulator(row_multiplier=10)
MIB = 1024 * 1024


class RecordingTI:
    """Stands in for the task instance: records XCom pushes."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def execute(op: SesExportToS3Operator) -> tuple[str, dict[str, Any]]:
    ti = RecordingTI()
    result = op.execute({"ti": ti})  # type: ignore[arg-type]
    return result, ti.xcom


@pytest.fixture(autouse=True)
def no_download_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SesExportJobHook, "download_retry_delay", 0.0)


def make_job(emu: SesExportEmulator, data_format: str = "CSV", rows: int = 500) -> str:
    """Create a Message Insights export job with ``rows`` rows and complete it."""
    client = emu.client()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    job_id = client.create_export_job(
        ExportDataSource={
            "MessageInsightsDataSource": {
                "StartDate": start,
                "EndDate": start + dt.timedelta(days=1),
                "MaxResults": rows,
            }
        },
        ExportDestination={"DataFormat": data_format},
    )["JobId"]
    emu.complete_job(job_id)
    return job_id


def source_bytes(emu: SesExportEmulator, job_id: str) -> bytes:
    """The export file, fetched independently of the code under test."""
    url = emu.client().get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def exported_records(emu: SesExportEmulator, job_id: str) -> int:
    """``Statistics.ExportedRecordsCount`` of the job (one row per recipient: more rows than messages)."""
    return int(emu.client().get_export_job(JobId=job_id)["Statistics"]["ExportedRecordsCount"])


def operator(job_id: str, moto_s3: MotoS3, key: str = "ses/export.csv", **kwargs: Any) -> SesExportToS3Operator:
    return SesExportToS3Operator(
        task_id="copy",
        job_id=job_id,
        s3_bucket=moto_s3.bucket,
        s3_key=key,
        aws_conn_id="ses_emu",
        dest_aws_conn_id=moto_s3.conn_id,
        **kwargs,
    )


@BIG_FILES
def test_csv_copy_multipart_matches_source(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    # ~9 MB with 5 MiB parts: over the single-PutObject size, a real multipart upload of two parts.
    job_id = make_job(ses_export_emulator, "CSV", rows=3_600)
    expected = source_bytes(ses_export_emulator, job_id)
    assert SINGLE_PUT_BYTES < len(expected) <= 10 * MIB
    uri, xcom = execute(operator(job_id, moto_s3, part_size=5 * MIB, chunk_size=256 * 1024))

    assert uri == f"s3://{moto_s3.bucket}/ses/export.csv"
    stored = moto_s3.get("ses/export.csv")
    assert stored == expected
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="ses/export.csv")
    assert head["ETag"].strip('"').endswith("-2")  # two parts
    assert head["ContentType"] == "text/csv"
    assert xcom["s3_uri"] == uri
    assert xcom["size_bytes"] == len(expected)
    assert xcom["records"] == exported_records(ses_export_emulator, job_id) == expected.count(b"\n") - 1
    assert xcom["etag"] == head["ETag"].strip('"')
    link = xcom["sesexport_s3_object"]
    assert link["bucket_name"] == moto_s3.bucket and link["key"] == "ses/export.csv"


@BIG_FILES
def test_a_file_over_one_part_but_under_the_single_put_size_is_one_put_object(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3
) -> None:
    """As boto3's upload_file: a multipart upload would cost three more requests for a file of a few MiB."""
    job_id = make_job(ses_export_emulator, "CSV", rows=2_400)
    expected = source_bytes(ses_export_emulator, job_id)
    assert 5 * MIB < len(expected) < SINGLE_PUT_BYTES
    _, xcom = execute(operator(job_id, moto_s3, part_size=5 * MIB))
    assert moto_s3.get("ses/export.csv") == expected
    assert "-" not in xcom["etag"]  # a multipart upload's ETag ends in -<parts>
    assert xcom["records"] == expected.count(b"\n") - 1


def test_json_copy_counts_the_array(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    job_id = make_job(ses_export_emulator, "JSON", rows=700)
    expected = source_bytes(ses_export_emulator, job_id)
    uri, xcom = execute(operator(job_id, moto_s3, key="ses/export.json"))
    stored = moto_s3.get("ses/export.json")
    assert stored == expected
    records = json.loads(stored)  # real SES writes one JSON array, an object per line
    assert isinstance(records, list) and all(isinstance(r, dict) for r in records)
    assert xcom["records"] == len(records) == exported_records(ses_export_emulator, job_id)
    assert xcom["size_bytes"] == len(expected)
    assert uri.endswith("/ses/export.json")


def test_gzip_copy_decompresses_to_source(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=5000)
    expected = source_bytes(ses_export_emulator, job_id)
    _, xcom = execute(operator(job_id, moto_s3, key="ses/export.csv.gz", gzip=True))
    stored = moto_s3.get("ses/export.csv.gz")
    assert stored[:2] == b"\x1f\x8b"
    assert gzip.decompress(stored) == expected
    assert xcom["size_bytes"] == len(stored) < len(expected)
    assert xcom["records"] == exported_records(ses_export_emulator, job_id)
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="ses/export.csv.gz")
    assert head["ContentType"] == "application/gzip"


def test_dest_uri_form(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=10)
    op = SesExportToS3Operator(
        task_id="copy",
        job_id=job_id,
        dest=f"s3://{moto_s3.bucket}/a/b.csv",
        aws_conn_id="ses_emu",
        dest_aws_conn_id=moto_s3.conn_id,
    )
    uri, _ = execute(op)
    assert uri == f"s3://{moto_s3.bucket}/a/b.csv"
    assert moto_s3.get("a/b.csv") == source_bytes(ses_export_emulator, job_id)


def test_expired_url_before_download_gets_a_fresh_one(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first URL is dead by the time the GET goes out (as after a long queue): a fresh one is fetched."""
    job_id = make_job(ses_export_emulator, "CSV", rows=2000)
    original = SesExportJobHook._fresh_export_url
    calls: list[int] = []

    def fetch_then_expire(self: SesExportJobHook, job: str, *given: Any) -> Any:
        result = original(self, job, *given)
        calls.append(1)
        if len(calls) == 1:
            ses_export_emulator.expire_urls()
        return result

    monkeypatch.setattr(SesExportJobHook, "_fresh_export_url", fetch_then_expire)
    ses_export_emulator.reset_stats()
    _, xcom = execute(operator(job_id, moto_s3))
    downloads = ses_export_emulator.stats()["downloads"]
    assert downloads["denied"] == 1 and downloads["ok"] == 1
    assert len(calls) == 2
    assert moto_s3.get("ses/export.csv") == source_bytes(ses_export_emulator, job_id)
    assert xcom["records"] == exported_records(ses_export_emulator, job_id)


@BIG_FILES
def test_connection_reset_mid_stream_resumes_with_range(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3
) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=2_000)
    expected = source_bytes(ses_export_emulator, job_id)
    ses_export_emulator.set_faults(download_drop_after=len(expected) // 3 + 1)
    ses_export_emulator.reset_stats()
    _, xcom = execute(operator(job_id, moto_s3))
    downloads = ses_export_emulator.stats()["downloads"]
    ses_export_emulator.clear_faults()
    assert downloads["dropped"] == 2
    # Resumed with Range: every byte crossed the wire once (a restart would send more).
    assert downloads["bytes"] == len(expected)
    assert moto_s3.get("ses/export.csv") == expected
    assert xcom["size_bytes"] == len(expected)


@BIG_FILES
def test_url_expiring_during_download_is_replaced(ses_export_emulator: SesExportEmulator) -> None:
    """The connection drops after the URL expired: the resume must use a fresh URL, not the dead one."""
    job_id = make_job(ses_export_emulator, "CSV", rows=2_000)
    expected = source_bytes(ses_export_emulator, job_id)
    ses_export_emulator.set_faults(download_drop_after=len(expected) // 2 + 1)
    ses_export_emulator.reset_stats()
    hook = SesExportJobHook(aws_conn_id="ses_emu")
    received = bytearray()
    with hook.open_export_stream(job_id, chunk_size=64 * 1024) as stream:
        for chunk in stream:
            if not received:
                ses_export_emulator.expire_urls()  # the URL in use dies while its response is still streaming
            received += chunk
    ses_export_emulator.clear_faults()
    assert bytes(received) == expected
    assert stream.url_refreshes == 1 and stream.resumes == 1
    assert ses_export_emulator.stats()["downloads"]["denied"] == 0


def test_urls_that_always_expire_fail_clearly(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=100)
    ses_export_emulator.set_faults(expire_urls_immediately=True)
    with pytest.raises(Exception, match=r"URL rejected .*AccessDenied.*Request has expired") as err:
        execute(operator(job_id, moto_s3))
    ses_export_emulator.clear_faults()
    assert "X-Amz-Signature" not in str(err.value)
    assert not moto_s3.exists("ses/export.csv")


def test_existing_object_without_replace_fails_before_downloading(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3
) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=100)
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="ses/export.csv", Body=b"old")
    ses_export_emulator.reset_stats()
    with pytest.raises(AirflowFailException, match=r"already exists: set replace=True"):
        execute(operator(job_id, moto_s3))
    assert moto_s3.get("ses/export.csv") == b"old"
    assert ses_export_emulator.stats()["downloads"]["requests"] == 0


def test_existing_object_with_replace_is_overwritten(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=100)
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="ses/export.csv", Body=b"old")
    execute(operator(job_id, moto_s3, replace=True))
    assert moto_s3.get("ses/export.csv") == source_bytes(ses_export_emulator, job_id)


def test_record_count_mismatch_fails_and_writes_nothing(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=300)
    records = exported_records(ses_export_emulator, job_id)
    original = SesExportJobHook.get_export_job

    def wrong_statistics(self: SesExportJobHook, job: str) -> dict[str, Any]:
        response = original(self, job)
        response["Statistics"]["ExportedRecordsCount"] = records + 1
        return response

    monkeypatch.setattr(SesExportJobHook, "get_export_job", wrong_statistics)
    message = rf"the file has {records} records but Statistics.ExportedRecordsCount is {records + 1}"
    with pytest.raises(SesExportTransferError, match=message):
        execute(operator(job_id, moto_s3, part_size=5 * MIB))
    assert not moto_s3.exists("ses/export.csv")
    uploads = moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket)
    assert not uploads.get("Uploads")  # the multipart upload was aborted


@BIG_FILES
def test_record_count_mismatch_on_multipart_upload_aborts_it(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = make_job(ses_export_emulator, "JSON", rows=6_000)
    real = exported_records(ses_export_emulator, job_id)
    original = SesExportJobHook.get_export_job

    def wrong_statistics(self: SesExportJobHook, job: str) -> dict[str, Any]:
        response = original(self, job)
        response["Statistics"]["ExportedRecordsCount"] = real - 1
        return response

    monkeypatch.setattr(SesExportJobHook, "get_export_job", wrong_statistics)
    with pytest.raises(
        SesExportTransferError, match=f"has {real} records but Statistics.ExportedRecordsCount is {real - 1}"
    ):
        execute(operator(job_id, moto_s3, key="big.jsonl", part_size=5 * MIB))
    assert not moto_s3.exists("big.jsonl")
    assert not moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads")


def test_unfinished_job_fails_clearly(ses_export_emulator: SesExportEmulator, moto_s3: MotoS3) -> None:
    client = ses_export_emulator.client()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    job_id = client.create_export_job(
        ExportDataSource={"MessageInsightsDataSource": {"StartDate": start, "EndDate": start + dt.timedelta(days=1)}},
        ExportDestination={"DataFormat": "CSV"},
    )["JobId"]
    client.cancel_export_job(JobId=job_id)
    with pytest.raises(AirflowFailException, match="cancelled"):
        execute(operator(job_id, moto_s3))
    assert not moto_s3.exists("ses/export.csv")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"s3_bucket": "Bad_Bucket"}, "s3_bucket"),
        ({"s3_bucket": "s3://bucket"}, "s3_bucket"),
        ({"s3_key": "/leading/slash.csv"}, "s3_key"),
        ({"s3_key": "folder/"}, "s3_key"),
        ({"job_id": "None"}, "job_id"),
    ],
)
def test_bad_rendered_input_fails_before_any_request(
    ses_export_emulator: SesExportEmulator, moto_s3: MotoS3, kwargs: dict[str, Any], param: str
) -> None:
    args: dict[str, Any] = {
        "task_id": "copy",
        "job_id": "{{ 'x' }}",
        "s3_bucket": "{{ 'b' }}",
        "s3_key": "{{ 'k' }}",
        "aws_conn_id": "ses_emu",
        "dest_aws_conn_id": moto_s3.conn_id,
    }
    op = SesExportToS3Operator(**args)
    op.job_id, op.s3_bucket, op.s3_key = "job-1", moto_s3.bucket, "k.csv"  # as rendered
    for name, value in kwargs.items():
        setattr(op, name, value)
    ses_export_emulator.reset_stats()
    with pytest.raises(SesExportInputError, match=rf"Invalid {param}="):
        execute(op)
    assert ses_export_emulator.stats()["downloads"]["requests"] == 0
    assert sum(v.get("requests", 0) for v in ses_export_emulator.stats()["operations"].values()) == 0


def test_logs_never_show_the_presigned_url(
    ses_export_emulator: SesExportEmulator,
    moto_s3: MotoS3,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=3000)
    size = len(source_bytes(ses_export_emulator, job_id))
    ses_export_emulator.set_faults(download_drop_after=size // 2)
    caplog.set_level("INFO")
    execute(operator(job_id, moto_s3))
    ses_export_emulator.clear_faults()
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "interrupted at byte" in logged  # the resume was logged ...
    assert "X-Amz-Signature=" not in logged  # ... without the URL's signature
