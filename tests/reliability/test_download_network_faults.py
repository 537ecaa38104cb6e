"""
Fault table, network rows: the download of an export broken at each point of the network, in the hook
(``download_export``, ``stream_export``) and in the copy operator (a real Airflow run, S3 on moto), and a
redirect from the pre-signed URL to another host.

GetExportJob is the emulator's, over HTTP: its URL carries unique secret values the emulator recorded
(:mod:`tests.leakcheck`). Each row points that URL (same path and query, so the same secret values) at a
broken place: a ``.invalid`` host (DNS failure), a closed 127.0.0.1 port (refused), the emulator resetting
the connection after the headers (reset mid-body), https to the plain-HTTP emulator (TLS error), an
unreachable proxy for an ``http://`` URL, a ``file://`` URL. Each asserts the error names the job and no
secret value appears in its text, its chained causes and contexts (suppressed ones too), its formatted
traceback, or anything logged or printed.

"Another host" for a redirect is another origin: scheme, host or port differs (``localhost`` is another host
than ``127.0.0.1``; another port of 127.0.0.1 is too). Redirects within the URL's origin are followed.
"""

from __future__ import annotations

import json
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from airflow_provider_sesexport.exceptions import SesExportDownloadError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from tests import leakcheck
from tests.reliability.conftest import SCALE, ExceptionSpy
from tests.reliability.helpers import START, create_job, state_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ses_export_emulator(time_scale=SCALE, processing_seconds=1, create_rate_limit=None),
]


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moved(url: str, scheme: str, netloc: str) -> str:
    """``url`` with another scheme and host, same path and query (so the same secret values)."""
    parts = urlsplit(url)
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


class Row:
    """One way to break the download: where the URL points, and what else breaks."""

    def __init__(self, name: str, point: Callable[[str, Any, pytest.MonkeyPatch], str], expect: str) -> None:
        self.name = name
        self.point = point
        self.expect = expect

    def __repr__(self) -> str:
        return self.name


def _proxy(url: str, emu: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return moved(url, "http", "export-bucket.invalid")


def _reset(url: str, emu: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    emu.set_faults(download_drop_after=0)  # headers sent, then the connection is aborted
    return url


ROWS = [
    Row("dns", lambda url, emu, mp: moved(url, "https", "export-bucket.invalid"), "NameResolutionError"),
    Row("refused", lambda url, emu, mp: moved(url, "http", f"127.0.0.1:{closed_port()}"), "ConnectionError"),
    Row("reset_mid_body", _reset, "connection broken"),
    Row("tls", lambda url, emu, mp: moved(url, "https", urlsplit(url).netloc), "SSLError"),
    Row("http_via_dead_proxy", _proxy, "ProxyError"),
    Row("file_scheme", lambda url, emu, mp: moved(url, "file", ""), "scheme file://"),
]


@pytest.fixture
def broken_urls(monkeypatch: pytest.MonkeyPatch) -> Callable[[Row, Any], list[str]]:
    """Point every S3Url GetExportJob returns at ``row``'s broken place; returns the URLs handed out."""
    handed_out: list[str] = []

    def arm(row: Row, emu: Any) -> list[str]:
        get = SesExportJobHook.get_export_job

        def get_export_job(hook: SesExportJobHook, job_id: str) -> dict[str, Any]:
            job = get(hook, job_id)
            destination = job.get("ExportDestination") or {}
            if destination.get("S3Url"):
                destination["S3Url"] = row.point(destination["S3Url"], emu, monkeypatch)
                handed_out.append(destination["S3Url"])
            return job

        monkeypatch.setattr(SesExportJobHook, "get_export_job", get_export_job)
        monkeypatch.setattr(SesExportJobHook, "download_retry_delay", 0.0)
        monkeypatch.setattr(SesExportJobHook, "download_max_attempts", 2)
        monkeypatch.setattr(SesExportJobHook, "download_timeout", (2.0, 5.0))
        return handed_out

    return arm


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception linked to it (causes and contexts, suppressed ones too)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return seen


def assert_no_secret(urls: list[str], exc: BaseException | None, *texts: str) -> None:
    """No secret value of ``urls`` in ``exc`` (its chain, its traceback) or ``texts``; the row did plant some."""
    values = {v for url in urls for v in leakcheck.secret_values_of(url)}
    assert len(values) >= 3, f"no planted values in {len(urls)} URLs: the row proves nothing"
    where = {f"text {i}": text for i, text in enumerate(texts)}
    if exc is not None:
        where["traceback"] = "".join(traceback.format_exception(exc))
        for i, linked in enumerate(chain(exc)):
            where[f"chain {i} {type(linked).__name__}"] = f"{linked} {linked.args!r}"
    for name, text in where.items():
        leakcheck.record(f"network fault row: {name}", text)
        found = leakcheck.find_leaks(text, name, values)
        assert not found, "\n".join(map(str, found))


def _completed_job(emu: Any) -> str:
    job_id = create_job(emu)
    emu.complete_job(job_id)
    return job_id


@pytest.mark.parametrize("row", ROWS, ids=str)
@pytest.mark.parametrize("method", ["download_export", "stream_export"])
def test_hook_download_network_fault(
    ses_export_emulator: Any,
    broken_urls: Callable[[Row, Any], list[str]],
    row: Row,
    method: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    emu = ses_export_emulator
    job_id = _completed_job(emu)
    urls = broken_urls(row, emu)
    hook = SesExportJobHook(aws_conn_id="aws_default")
    caplog.set_level("INFO")
    methods: dict[str, Callable[[], object]] = {
        "download_export": lambda: hook.download_export(job_id, tmp_path / "export.csv"),
        "stream_export": lambda: b"".join(hook.stream_export(job_id)),
    }
    with pytest.raises(SesExportDownloadError) as err:
        methods[method]()
    out = capfd.readouterr()
    message = str(err.value)
    assert job_id in message, message
    assert row.expect in message, message
    assert not (tmp_path / "export.csv").exists() and not (tmp_path / "export.csv.part").exists()
    logged = f"{caplog.text}\n{out.out}\n{out.err}"  # Airflow 3 hooks log through structlog to stdout
    if row.name != "file_scheme":  # retried: the retry's warning was logged (and scrubbed)
        assert "interrupted" in logged and row.expect in logged, logged
    assert_no_secret(urls, err.value, logged)


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    conn = {"conn_type": "aws", "login": "testing", "password": "testing"}
    conn["extra"] = {"region_name": "us-east-1", "endpoint_url": moto_endpoint}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_S3", json.dumps(conn))
    name = f"net-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    ).create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_copy_operator_network_fault(
    ses_export_emulator: Any,
    broken_urls: Callable[[Row, Any], list[str]],
    row: Row,
    bucket: str,
    run_dag: Any,
    dag_id: str,
    exception_spy: ExceptionSpy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
    from tests.airflow_names import DAG

    emu = ses_export_emulator
    job_id = _completed_job(emu)
    urls = broken_urls(row, emu)
    exception_spy.wrap(monkeypatch, SesExportToS3Operator, "execute")
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesExportToS3Operator(
            task_id="copy", job_id=job_id, s3_bucket=bucket, s3_key="ses/export.csv", dest_aws_conn_id="moto_s3"
        )
    dr = run_dag(dag)
    out = capfd.readouterr()
    assert state_of(dr.get_task_instance("copy")) == "failed"
    errors = exception_spy.of_type(SesExportDownloadError)
    assert len(errors) == 1, exception_spy.raised
    message = str(errors[0])
    assert job_id in message and row.expect in message, message
    logged = f"{caplog.text}\n{out.out}\n{out.err}"
    assert job_id in logged and row.expect in logged, "the task log does not show the error"
    assert_no_secret(urls, errors[0], logged)


class Redirector(ThreadingHTTPServer):
    """Answers ``/hop...`` with a 302 to ``target`` (``None``: to ``/file`` on itself) and serves ``/file``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.target: str | None = None
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RedirectHandler(BaseHTTPRequestHandler):
    server: Redirector
    BODY = b"col\n1\n"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path.split("?")[0])
        if self.path.startswith("/hop"):
            query = self.path.split("?", 1)[1]
            self.send_response(302)
            self.send_header("Location", (self.server.target or "/file") + "?" + query)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)


def _serve() -> Redirector:
    srv = Redirector()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def redirector() -> Iterator[Redirector]:
    srv = _serve()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def other_server() -> Iterator[Redirector]:
    srv = _serve()
    yield srv
    srv.shutdown()
    srv.server_close()


def _via(redirector: Redirector) -> Row:
    """The URL moved onto ``redirector`` under ``/hop`` (same query: same secret values)."""

    def point(url: str, emu: Any, monkeypatch: pytest.MonkeyPatch) -> str:
        parts = urlsplit(url)
        return urlunsplit(("http", f"127.0.0.1:{redirector.server_address[1]}", "/hop" + parts.path, parts.query, ""))

    return Row("redirect", point, "")


@pytest.mark.parametrize("elsewhere", ["localhost, same port", "127.0.0.1, another port", "https, same host"])
def test_redirect_to_another_host_is_not_followed(
    ses_export_emulator: Any,
    broken_urls: Callable[[Row, Any], list[str]],
    redirector: Redirector,
    other_server: Redirector,
    elsewhere: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = ses_export_emulator
    job_id = _completed_job(emu)
    port = redirector.server_address[1]
    redirector.target = {
        "localhost, same port": f"http://localhost:{port}/file",
        "127.0.0.1, another port": f"{other_server.base}/file",
        "https, same host": f"https://127.0.0.1:{port}/file",
    }[elsewhere]
    urls = broken_urls(_via(redirector), emu)
    with pytest.raises(SesExportDownloadError) as err:
        b"".join(SesExportJobHook(aws_conn_id="aws_default").stream_export(job_id))
    message = str(err.value)
    target = urlsplit(redirector.target)
    assert job_id in message and "redirected to another host" in message and "not followed" in message, message
    assert f"{target.scheme}://{target.hostname}:{target.port or 443}" in message, message
    assert [p.startswith("/hop") for p in redirector.paths] == [True], redirector.paths  # refused at once, no retry
    assert other_server.paths == [], "the redirect was followed"
    assert_no_secret(urls, err.value, caplog.text)


def test_redirect_within_the_same_origin_is_followed(
    ses_export_emulator: Any, broken_urls: Callable[[Row, Any], list[str]], redirector: Redirector
) -> None:
    emu = ses_export_emulator
    job_id = _completed_job(emu)
    broken_urls(_via(redirector), emu)
    data = b"".join(SesExportJobHook(aws_conn_id="aws_default").stream_export(job_id))
    assert data == _RedirectHandler.BODY
    assert [p.split("/")[1] for p in redirector.paths] == ["hop", "file"], redirector.paths
