"""
The hook's download methods against a small real HTTP server with behaviours the emulator does not have.

The server (stdlib, 127.0.0.1) can ignore ``Range``, answer with server errors, reject URLs, change
the file mid-download, or drop the connection. GetExportJob comes from botocore's Stubber (validated
against the service model), pointing ``S3Url`` at that server with a fresh signature each call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import SesExportJobFailedError
from airflow_provider_sesexport.hooks._download import SesExportDownloadError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from tests.integration.file_server import FileServer
from tests.unit.responses import job_response

pytestmark = pytest.mark.integration
BODY = b"".join(b"row %06d padded to a fixed width        \n" % i for i in range(20_000))


@pytest.fixture
def server(server: FileServer) -> FileServer:
    server.body, server.drop_after = BODY, 10_000
    return server


def completed(server: FileServer, n: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    url = (
        f"{server.base}/exports/job-1/data.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={now:%Y%m%dT%H%M%SZ}"
        f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=sig{n:04d}"
    )
    return job_response("COMPLETED", ExportDestination={"DataFormat": "CSV", "S3Url": url})


def stub_jobs(stubber: Stubber, server: FileServer, count: int) -> None:
    for n in range(count):
        stubber.add_response("get_export_job", completed(server, n), {"JobId": "job-1"})


def test_download_url_is_fresh_and_expires_in_five_minutes(hook: SesExportJobHook, server: FileServer) -> None:
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)
        before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        url, expires_at = hook.get_export_download_url("job-1")
    assert url.startswith(server.base) and "sig0000" in url
    assert before + dt.timedelta(minutes=5) <= expires_at <= before + dt.timedelta(minutes=5, seconds=2)


def test_stream_plain(hook: SesExportJobHook, server: FileServer) -> None:
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)
        chunks = list(hook.stream_export("job-1", chunk_size=4096))
    assert b"".join(chunks) == BODY
    assert all(len(c) == 4096 for c in chunks[:-1])
    assert server.requests[0]["accept_encoding"] == "identity"


def test_server_ignoring_range_is_reread_and_skipped(hook: SesExportJobHook, server: FileServer) -> None:
    server.script = ["drop", "ignore-range"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        data = b"".join(hook.stream_export("job-1"))
    assert data == BODY
    assert [r["range"] for r in server.requests] == [None, f"bytes={server.drop_after}-"]


def test_drop_resumes_with_range_if_match_and_a_new_url(hook: SesExportJobHook, server: FileServer) -> None:
    server.script = ["drop", "drop", "ok"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 3)
        data = b"".join(hook.stream_export("job-1"))
    assert data == BODY
    assert [r["range"] for r in server.requests] == [None, "bytes=10000-", "bytes=20000-"]
    assert [r["if_match"] for r in server.requests] == [None, '"v1"', '"v1"']
    assert [r["signature"] for r in server.requests] == ["sig0000", "sig0001", "sig0002"]


def test_expired_url_is_replaced(hook: SesExportJobHook, server: FileServer) -> None:
    server.script = ["403", "ok"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        assert b"".join(hook.stream_export("job-1")) == BODY
    assert [r["signature"] for r in server.requests] == ["sig0000", "sig0001"]


@pytest.mark.parametrize("status", ["500", "503", "404"])
def test_server_errors_are_retried(hook: SesExportJobHook, server: FileServer, status: str) -> None:
    server.script = [status, "ok"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        assert b"".join(hook.stream_export("job-1")) == BODY


def test_persistent_rejection_gives_up_with_a_redacted_message(hook: SesExportJobHook, server: FileServer) -> None:
    hook.download_max_attempts = 3
    server.script = ["403"] * 3
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 3)
        with pytest.raises(SesExportDownloadError, match=r"AccessDenied: Request has expired.*after 3 attempts") as err:
            b"".join(hook.stream_export("job-1"))
    message = str(err.value)
    assert "sig000" not in message and "SECRET-SIGNATURE" not in message
    assert f"{server.base}/exports/job-1/data.csv?<redacted>" in message


def test_file_changed_mid_download_is_an_error_not_a_splice(hook: SesExportJobHook, server: FileServer) -> None:
    server.script = ["drop", "changed"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        with pytest.raises(SesExportDownloadError, match="changed during the download"):
            b"".join(hook.stream_export("job-1"))


def test_wrong_content_range_is_refused(hook: SesExportJobHook, server: FileServer) -> None:
    server.script = ["drop", "bad-content-range"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        with pytest.raises(SesExportDownloadError, match="Content-Range"):
            b"".join(hook.stream_export("job-1"))


def test_download_export_writes_the_file_atomically(hook: SesExportJobHook, server: FileServer, tmp_path: Path) -> None:
    server.script = ["drop"]
    target = tmp_path / "export.csv"
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 2)
        written = hook.download_export("job-1", target)
    assert written == len(BODY)
    assert target.read_bytes() == BODY
    assert not (tmp_path / "export.csv.part").exists()


def test_failed_download_leaves_no_file(hook: SesExportJobHook, server: FileServer, tmp_path: Path) -> None:
    hook.download_max_attempts = 1
    server.script = ["403"]
    target = tmp_path / "export.csv"
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)
        with pytest.raises(SesExportDownloadError):
            hook.download_export("job-1", target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING"])
def test_unfinished_job_has_nothing_to_download(hook: SesExportJobHook, status: str) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
        with pytest.raises(Exception, match="has not finished"):
            hook.get_export_download_url("job-1")


def test_failed_job_raises_its_typed_error(hook: SesExportJobHook) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_response("get_export_job", job_response("FAILED"), {"JobId": "job-1"})
        with pytest.raises(SesExportJobFailedError):
            list(hook.stream_export("job-1"))


def test_completed_without_url_is_a_clear_error(hook: SesExportJobHook) -> None:
    with Stubber(hook.conn) as stubber:
        stubber.add_response(
            "get_export_job", job_response("COMPLETED", ExportDestination={"DataFormat": "CSV"}), {"JobId": "job-1"}
        )
        with pytest.raises(Exception, match="returned no S3Url"):
            hook.get_export_download_url("job-1")


def test_invalid_chunk_size(hook: SesExportJobHook) -> None:
    with pytest.raises(ValueError, match="Invalid chunk_size=0"):
        hook.open_export_stream("job-1", chunk_size=0)


def test_a_job_just_read_serves_the_first_request_and_a_resume_gets_a_fresh_url(
    hook: SesExportJobHook, server: FileServer
) -> None:
    server.script = ["drop", "ok"]
    asked_at = dt.datetime.now(dt.timezone.utc)
    given = completed(server, 7)
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)  # the resume's GetExportJob only
        with hook.open_export_stream("job-1", job=given, retrieved_at=asked_at) as stream:
            assert b"".join(stream) == BODY
        stubber.assert_no_pending_responses()
    assert [r["signature"] for r in server.requests] == ["sig0007", "sig0000"]
    assert stream.url_refreshes == 1


@pytest.mark.parametrize("age_s", [61, 400])
def test_a_job_read_too_long_ago_is_read_again(hook: SesExportJobHook, server: FileServer, age_s: int) -> None:
    """Less than URL_REUSE_MARGIN left of the URL's five minutes (counted from the caller's request): a fresh one."""
    asked_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age_s)
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)
        with hook.open_export_stream("job-1", job=completed(server, 7), retrieved_at=asked_at) as stream:
            assert b"".join(stream) == BODY
        stubber.assert_no_pending_responses()
    assert [r["signature"] for r in server.requests] == ["sig0000"]


def test_an_unfinished_job_given_is_read_again(hook: SesExportJobHook, server: FileServer) -> None:
    running = job_response("PROCESSING")
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, 1)
        with hook.open_export_stream("job-1", job=running, retrieved_at=dt.datetime.now(dt.timezone.utc)) as stream:
            assert b"".join(stream) == BODY
    assert [r["signature"] for r in server.requests] == ["sig0000"]
