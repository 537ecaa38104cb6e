"""
SesExportToS3Operator over real HTTP guarding its destination: one winner per key with ``replace=False``, and only
an export stored. The SES export emulator is the source, moto's S3 server the destination, both on 127.0.0.1.
"""

from __future__ import annotations

import threading
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from botocore.exceptions import ClientError
from packaging.version import Version

from airflow_provider_sesexport.exceptions import SesExportContentError, SesExportDestinationExistsError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SINGLE_PUT_BYTES, SesExportToS3Operator
from ses_export_emulator import SesExportEmulator
from tests.airflow_names import allow_execute_in_this_thread
from tests.integration.conftest import MotoS3
from tests.integration.test_transfer_s3 import (  # noqa: F401  (no_download_retry_delay: autouse here too)
    execute,
    make_job,
    no_download_retry_delay,
    operator,
    source_bytes,
)

#: Jobs completed by hand, real-time URLs, the emulator reachable as ``ses_emu``.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.ses_export_emulator(conn_id="ses_emu", create_rate_limit=None, time_scale=1.0),
]
MIB = 1024 * 1024
#: Planted in the page served in S3's place: it must not end up in S3, nor in an error.
PLANTED = "X-Amz-Signature=planted0123456789abcdef"
PAGE = (
    f"<!DOCTYPE html>\n<html><body><h1>Proxy error</h1><a href='https://x.invalid/?{PLANTED}'>retry</a></body></html>"
)


def open_uploads(moto_s3: MotoS3) -> list[Any]:
    return moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads") or []


# -- one winner per key -------------------------------------------------------------------------------
#: moto honours If-None-Match on PutObject and CompleteMultipartUpload from 5.1 (5.1.10, MWAA 3.0.6's, does); 5.0.11,
#: pinned by the MWAA 2.10.3 and 2.11.2 constraints, ignores it on both (5.0.20 on PutObject only).
OLD_MOTO = Version(metadata.version("moto")) < Version("5.1.10")


@pytest.mark.xfail(OLD_MOTO, reason="moto < 5.1.10 ignores If-None-Match on writes", strict=True)
@pytest.mark.parametrize("multipart", [False, True], ids=["put_object", "multipart"])
def test_moto_refuses_a_second_conditional_write(moto_s3: MotoS3, multipart: bool) -> None:
    """What the copy relies on: S3 (here moto) answers 412 to a second create-only write of a key."""
    s3, bucket = moto_s3.client(), moto_s3.bucket

    def create(body: bytes) -> None:
        if not multipart:
            s3.put_object(Bucket=bucket, Key="k", Body=body, IfNoneMatch="*")
            return
        upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=body)["ETag"]
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload,
            MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]},
            IfNoneMatch="*",
        )

    create(b"first")
    with pytest.raises(ClientError) as err:
        create(b"second")
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert moto_s3.get("k") == b"first"


def moto_checks_conditions(moto_s3: MotoS3) -> bool:
    """Whether this moto refuses a create-only PutObject of an existing key (moto 5.0.11, on MWAA 2.x, does not)."""
    s3 = moto_s3.client()
    s3.put_object(Bucket=moto_s3.bucket, Key="probe", Body=b"1")
    try:
        s3.put_object(Bucket=moto_s3.bucket, Key="probe", Body=b"2", IfNoneMatch="*")
    except ClientError:
        return True
    finally:
        s3.delete_object(Bucket=moto_s3.bucket, Key="probe")
    return False


class S3Creates:
    """
    S3's conditional creates, atomic: the PutObject and CompleteMultipartUpload requests of one key reach moto one
    at a time, as they come, and each request carrying ``If-None-Match: *`` is recorded.

    moto checks a condition and then writes, unlocked, where S3 does both in one step: two creates in the same
    millisecond could both pass its check. A moto that ignores the header (5.0.x) gets S3's rule applied here, on
    the wire, before the request reaches it: so the test still proves the header is sent, with the image's botocore.
    """

    def __init__(self, moto_s3: MotoS3, key: str) -> None:
        self.moto_s3 = moto_s3
        self.path = f"/{moto_s3.bucket}/{key}"
        self.key = key
        self.lock = threading.Lock()
        self.enforce = not moto_checks_conditions(moto_s3)
        self.conditional: list[str] = []  # the operation of each create carrying If-None-Match: *

    def operation(self, request: Any) -> str | None:
        parts = urlsplit(request.url)
        if unquote(parts.path) != self.path:
            return None
        if request.method == "PUT" and not parts.query:
            return "PutObject"
        if request.method == "POST" and "uploadId=" in parts.query:
            return "CompleteMultipartUpload"
        return None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.endpoint import Endpoint

        send = Endpoint._send

        def serialised(endpoint: Endpoint, request: Any) -> Any:
            operation = self.operation(request)
            if operation is None:
                return send(endpoint, request)
            with self.lock:
                if request.headers.get("If-None-Match") in ("*", b"*"):
                    self.conditional.append(operation)
                    if self.enforce and self.moto_s3.exists(self.key):
                        return precondition_failed(request.url)
                return send(endpoint, request)

        monkeypatch.setattr(Endpoint, "_send", serialised)


def precondition_failed(url: str) -> Any:
    """S3's answer to a create-only write of an existing key."""
    from botocore.awsrequest import AWSResponse

    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
        b"<Message>At least one of the pre-conditions you specified did not hold</Message>"
        b"<Condition>If-None-Match</Condition></Error>"
    )

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    return AWSResponse(url, 412, {"Content-Type": "application/xml", "Content-Length": str(len(body))}, Raw())


def race(ops: list[SesExportToS3Operator], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """
    Run the copies in threads, each released into its upload only once all have passed the existence check.

    :return: each copy's result: the ``(uri, xcom)`` it returned, or the exception it raised.
    """
    barrier = threading.Barrier(len(ops), timeout=60)
    stream_into = SesExportToS3Operator._stream_into

    def after_the_check(self: SesExportToS3Operator, *args: Any, **kwargs: Any) -> int:
        barrier.wait()  # every copy found the key free: from here only S3's condition can stop one
        return stream_into(self, *args, **kwargs)

    monkeypatch.setattr(SesExportToS3Operator, "_stream_into", after_the_check)
    results: list[Any] = [None] * len(ops)

    def run(i: int) -> None:
        allow_execute_in_this_thread()
        try:
            results[i] = execute(ops[i])
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ops))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.parametrize(
    ("rows", "multiplier"),
    [
        pytest.param(300, 1, id="put_object"),
        pytest.param(3_000, 20, id="multipart", marks=pytest.mark.ses_export_emulator(row_multiplier=20)),
    ],
)
def test_two_copies_to_one_key_at_once_one_wins(
    ses_export_emulator: SesExportEmulator,
    moto_s3: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
    rows: int,
    multiplier: int,
) -> None:
    jobs = [make_job(ses_export_emulator, "CSV", rows=rows), make_job(ses_export_emulator, "CSV", rows=rows)]
    files = [source_bytes(ses_export_emulator, job) for job in jobs]
    assert files[0] != files[1]
    if multiplier > 1:
        assert all(len(f) > SINGLE_PUT_BYTES for f in files)  # a multipart upload each
    key = "ses/daily/2026-11-01.csv"
    creates = S3Creates(moto_s3, key)
    creates.install(monkeypatch)
    results = race([operator(job, moto_s3, key=key, part_size=5 * MIB) for job in jobs], monkeypatch)

    won = [i for i, r in enumerate(results) if isinstance(r, tuple)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], SesExportDestinationExistsError), repr(lost[0])
    assert lost[0].during_copy
    assert f"s3://{moto_s3.bucket}/{key} was created by another writer while this copy ran" in str(lost[0])
    assert moto_s3.get(key) == files[won[0]]  # the winner's bytes, whole
    assert results[won[0]][1]["size_bytes"] == len(files[won[0]])
    assert open_uploads(moto_s3) == []  # the loser's multipart upload was aborted
    creating = "CompleteMultipartUpload" if multiplier > 1 else "PutObject"
    assert creates.conditional == [creating, creating]  # both copies asked S3 for a create-only write


# -- only the export is stored ------------------------------------------------------------------------
@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "binary/octet-stream"])
def test_a_page_served_with_200_is_not_stored(
    ses_export_emulator: SesExportEmulator,
    moto_s3: MotoS3,
    data_format: str,
    content_type: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id = make_job(ses_export_emulator, data_format, rows=100)
    ses_export_emulator.set_faults(download_body=PAGE, download_content_type=content_type)
    caplog.set_level("INFO")
    with pytest.raises(SesExportContentError) as err:
        execute(operator(job_id, moto_s3, key="ses/x", part_size=5 * MIB))
    message = str(err.value)
    assert f"SES export job {job_id!r}: the download is not a {data_format} export file" in message
    assert f"got {content_type}, {len(PAGE.encode())} bytes" in message
    assert not moto_s3.exists("ses/x")
    assert open_uploads(moto_s3) == []
    out, errout = capfd.readouterr()
    assert "planted" not in message + out + errout + caplog.text


def test_the_page_stops_the_sql_loaders_reader_too(ses_export_emulator: SesExportEmulator) -> None:
    job_id = make_job(ses_export_emulator, "CSV", rows=100)
    ses_export_emulator.set_faults(download_body=PAGE, download_content_type="text/html")
    records = SesExportJobHook(aws_conn_id="ses_emu").iter_export_records(job_id, chunk_size=16)
    with pytest.raises(
        SesExportContentError, match=f"{job_id!r}: the download is not a CSV export file: got text/html"
    ):
        next(records)


def test_an_export_without_records_is_stored_with_a_warning(
    ses_export_emulator: SesExportEmulator,
    moto_s3: MotoS3,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # like real SES: no ExportedRecordsCount to compare with
    job_id = make_job(ses_export_emulator, "CSV", rows=50)
    header = source_bytes(ses_export_emulator, job_id).split(b"\n", 1)[0] + b"\n"
    ses_export_emulator.set_faults(download_body=header.decode(), download_content_type="text/csv")
    caplog.set_level("WARNING")
    uri, xcom = execute(operator(job_id, moto_s3, key="empty.csv"))
    assert moto_s3.get("empty.csv") == header
    assert xcom["records"] == 0 and xcom["size_bytes"] == len(header)
    out, err = capfd.readouterr()
    assert f"SES export job {job_id} has no records: stored {uri} all the same." in out + err + caplog.text
