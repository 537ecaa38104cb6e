"""
The ``s3://bucket/key`` form of ``S3Url``: read through the Amazon provider's S3Hook on the same connection.

The emulator only hands out https URLs, so GetExportJob comes from botocore's Stubber (validated
against the model) with an ``s3://`` URL pointing at an object on moto's S3 server (real HTTP).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from airflow_provider_sesexport.hooks._download import SesExportDownloadError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from tests.integration.conftest import MotoS3
from tests.unit.responses import job_response

pytestmark = pytest.mark.integration
ROWS = 5000
# a metrics CSV export (the copy stores only what is an export of the job's layout)
BODY = b"ISP,SEND_VOLUME\n" + b"".join(b"isp-%d,%d.0000\n" % (i, i * 7) for i in range(ROWS))


def s3_job(url: str, exported: int = ROWS) -> dict[str, Any]:
    return job_response(
        "COMPLETED",
        ExportDestination={"DataFormat": "CSV", "S3Url": url},
        Statistics={"ProcessedRecordsCount": exported, "ExportedRecordsCount": exported},
    )


@pytest.fixture
def source(moto_s3: MotoS3) -> str:
    key = f"ses-exports/{uuid.uuid4().hex}/data.csv"
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key=key, Body=BODY)
    return f"s3://{moto_s3.bucket}/{key}"


@pytest.fixture
def hook(moto_s3: MotoS3) -> SesExportJobHook:
    h = SesExportJobHook(aws_conn_id=moto_s3.conn_id)
    h.download_retry_delay = 0.0
    return h


def test_stream_s3_url(hook: SesExportJobHook, source: str) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_response("get_export_job", s3_job(source), {"JobId": "job-1"})
        url, _ = hook.get_export_download_url("job-1")
        assert url == source
        stubber.add_response("get_export_job", s3_job(source), {"JobId": "job-1"})
        chunks = list(hook.stream_export("job-1", chunk_size=1000))
    assert b"".join(chunks) == BODY
    assert all(len(c) == 1000 for c in chunks[:-1])


def test_s3_read_dropped_mid_stream_resumes_with_range(
    hook: SesExportJobHook, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first body breaks after one chunk (a read timeout); the resume asks S3 for the rest with Range."""
    original = StreamingBody.iter_chunks
    broken: list[int] = []

    def flaky(self: StreamingBody, chunk_size: int = 1024) -> Any:
        for i, chunk in enumerate(original(self, chunk_size)):
            if i == 1 and not broken:
                broken.append(1)
                raise ReadTimeoutError(endpoint_url="moto")
            yield chunk

    monkeypatch.setattr(StreamingBody, "iter_chunks", flaky)
    requests: list[dict[str, Any]] = []
    s3_client = hook._export_s3_hook().get_conn()
    s3_client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: requests.append(dict(params))
    )
    with Stubber(hook.conn) as stubber:
        for _ in range(2):
            stubber.add_response("get_export_job", s3_job(source), {"JobId": "job-1"})
        with hook.open_export_stream("job-1", chunk_size=4096) as stream:
            data = b"".join(stream)
    assert data == BODY
    assert stream.resumes == 1
    assert "Range" not in requests[0]
    assert requests[1]["Range"] == "bytes=4096-" and requests[1]["IfMatch"]


def test_s3_object_missing_fails_after_fresh_urls(hook: SesExportJobHook, moto_s3: MotoS3) -> None:
    hook.download_max_attempts = 2
    missing = f"s3://{moto_s3.bucket}/no/such/key.csv"
    with Stubber(hook.conn) as stubber:
        for _ in range(2):
            stubber.add_response("get_export_job", s3_job(missing), {"JobId": "job-1"})
        with pytest.raises(SesExportDownloadError, match=r"NoSuchKey.*after 2 attempts"):
            list(hook.stream_export("job-1"))


def test_operator_copies_from_s3_url(source: str, moto_s3: MotoS3) -> None:
    op = SesExportToS3Operator(
        task_id="copy",
        job_id="job-1",
        dest=f"s3://{moto_s3.bucket}/copies/data.csv",
        aws_conn_id=moto_s3.conn_id,  # dest_aws_conn_id defaults to this connection
    )
    xcom: dict[str, Any] = {}

    class TI:
        def xcom_push(self, key: str, value: Any, **_: Any) -> None:
            xcom[key] = value

    with Stubber(op.hook.conn) as stubber:
        stubber.add_response("get_export_job", s3_job(source), {"JobId": "job-1"})
        uri = op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert uri == f"s3://{moto_s3.bucket}/copies/data.csv"
    assert moto_s3.get("copies/data.csv") == BODY
    assert xcom["records"] == ROWS and xcom["size_bytes"] == len(BODY)


def test_operator_record_mismatch_from_s3_url(source: str, moto_s3: MotoS3) -> None:
    op = SesExportToS3Operator(
        task_id="copy", job_id="job-1", s3_bucket=moto_s3.bucket, s3_key="copies/bad.csv", aws_conn_id=moto_s3.conn_id
    )
    with Stubber(op.hook.conn) as stubber:
        stubber.add_response("get_export_job", s3_job(source, exported=ROWS + 1), {"JobId": "job-1"})
        with pytest.raises(
            Exception, match=f"the file has {ROWS} records but Statistics.ExportedRecordsCount is {ROWS + 1}"
        ):
            op.execute({"ti": None})  # type: ignore[arg-type]
    assert not moto_s3.exists("copies/bad.csv")


def test_gzip_source_is_not_compressed_twice(moto_s3: MotoS3) -> None:
    import gzip

    compressed = gzip.compress(BODY)
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="ses-exports/gz/data.csv.gz", Body=compressed)
    op = SesExportToS3Operator(
        task_id="copy",
        job_id="job-1",
        dest=f"s3://{moto_s3.bucket}/copies/data.csv.gz",
        aws_conn_id=moto_s3.conn_id,
        gzip=True,
    )
    xcom: dict[str, Any] = {}

    class TI:
        def xcom_push(self, key: str, value: Any, **_: Any) -> None:
            xcom[key] = value

    with Stubber(op.hook.conn) as stubber:
        stubber.add_response(
            "get_export_job", s3_job(f"s3://{moto_s3.bucket}/ses-exports/gz/data.csv.gz"), {"JobId": "job-1"}
        )
        op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert moto_s3.get("copies/data.csv.gz") == compressed  # stored as is, not gzip inside gzip
    assert xcom["records"] == ROWS  # counted on the decompressed content
