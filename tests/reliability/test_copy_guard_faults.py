"""
Fault table, copy rows: ``wait >> result >> copy`` in a real Airflow run while a proxy's page answers the download
with 200 (as text/html, and disguised as binary/octet-stream), and two runs copying to one key.

The page is never stored (each try fails naming the job and what came back; no object, no open multipart upload),
and of two runs copying to the same key with ``replace=False`` only one stores its file.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_sesexport.exceptions import SesExportContentError, SesExportDestinationExistsError
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from tests.reliability.conftest import SCALE
from tests.reliability.helpers import create_job, state_of
from tests.reliability.test_copy_faults import _copy_dag, _export_bytes, _stored, bucket  # noqa: F401

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ses_export_emulator(time_scale=SCALE, processing_seconds=1, create_rate_limit=None, row_multiplier=100),
]
PLANTED = "X-Amz-Signature=planted0123456789abcdef"
PAGE = f"<html><body><p>Proxy error</p><a href='https://x.invalid/?{PLANTED}'>retry</a></body></html>"


def _s3(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.mark.parametrize("content_type", ["text/html", "binary/octet-stream"], ids=["html", "octet_stream"])
def test_a_page_answering_the_download_is_never_stored(
    ses_export_emulator: Any,
    bucket: str,  # noqa: F811
    moto_endpoint: str,
    run_dag: Any,
    dag_id: str,
    exception_spy: Any,
    monkeypatch: pytest.MonkeyPatch,
    content_type: str,
) -> None:
    emu = ses_export_emulator
    job_id = create_job(emu)
    emu.complete_job(job_id)
    exception_spy.wrap(monkeypatch, SesExportToS3Operator, "execute")
    emu.set_faults(download_body=PAGE, download_content_type=content_type)
    dr = run_dag(_copy_dag(dag_id, job_id, bucket))
    emu.clear_faults()
    copy = dr.get_task_instance("copy")
    assert [state_of(dr.get_task_instance(t)) for t in ("wait", "result", "copy")] == ["success", "success", "failed"]
    assert copy.try_number == 3, "a page in S3's place may be gone on the next try: the retries are spent"
    errors = exception_spy.of_type(SesExportContentError)
    assert len(errors) == 3
    assert all(f"{job_id!r}: the download is not a CSV export file: got {content_type}" in str(e) for e in errors)
    assert all("planted" not in str(e) for e in errors)
    listing = _s3(moto_endpoint).list_objects_v2(Bucket=bucket).get("Contents") or []
    assert listing == []
    assert not _s3(moto_endpoint).list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_second_run_copying_to_the_same_key_does_not_replace_the_first(
    ses_export_emulator: Any,
    bucket: str,  # noqa: F811
    moto_endpoint: str,
    run_dag: Any,
    dag_id: str,
    exception_spy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backfill's copy of another job to the key a scheduled run wrote: it fails once, naming the key."""
    emu = ses_export_emulator
    first, second = create_job(emu), create_job(emu)
    emu.complete_job(first)
    emu.complete_job(second)
    expected = _export_bytes(emu, first)
    assert run_dag(_copy_dag(dag_id, first, bucket)).get_task_instance("copy").state == "success"
    exception_spy.wrap(monkeypatch, SesExportToS3Operator, "execute")
    dr = run_dag(_copy_dag(dag_id + "_backfill", second, bucket))
    copy = dr.get_task_instance("copy")
    assert state_of(copy) == "failed" and copy.try_number == 1, "an existing key must not spend retries"
    [error] = exception_spy.of_type(SesExportDestinationExistsError)
    assert f"s3://{bucket}/ses/export.csv already exists" in str(error)
    assert _stored(moto_endpoint, bucket, "ses/export.csv") == expected
