"""
A small real HTTP file server (stdlib, 127.0.0.1) with behaviours the emulator does not have, for the download tests.

It serves ``body`` at any path and honours ``Range`` and ``If-Match``; ``script`` holds one behaviour per request:
``ok``, ``drop`` (the connection dropped after ``drop_after`` bytes, half the answer when None), ``ignore-range``,
``bad-content-range``, ``changed`` (a new ETag), or an error status (``403``, ``404``, ``500``, ``503``) answered with
an S3-style error body holding a signature.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook


class FileServer(ThreadingHTTPServer):
    """Serves ``body`` at any path; ``script`` is a list of behaviours, one consumed per request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body = b""
        self.content_type = "text/csv"
        self.etag = '"v1"'
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.drop_after: int | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose here (drops, refused URLs): no tracebacks on stderr."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def ranges(self) -> list[str | None]:
        """The ``Range`` header of each request so far."""
        return [request["range"] for request in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        behaviour = srv.script.pop(0) if srv.script else "ok"
        query = parse_qs(urlsplit(self.path).query)
        srv.requests.append(
            {
                "behaviour": behaviour,
                "range": self.headers.get("Range"),
                "if_match": self.headers.get("If-Match"),
                "accept_encoding": self.headers.get("Accept-Encoding"),
                "signature": query.get("X-Amz-Signature", [""])[0],
            }
        )
        if behaviour in ("403", "404", "500", "503"):
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
            body += b"<SignatureProvided>SECRET-SIGNATURE</SignatureProvided></Error>"
            self.send_response(int(behaviour))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if behaviour == "changed":
            srv.etag = '"v2"'
        if_match = self.headers.get("If-Match")
        if if_match and if_match != srv.etag:
            self.send_response(412)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first = 0
        header = self.headers.get("Range")
        if header and behaviour != "ignore-range":
            first = int(header.split("=")[1].split("-")[0])
        if behaviour == "bad-content-range":
            first += 1
        data = srv.body[first:]
        partial = bool(header) and behaviour != "ignore-range"
        self.send_response(206 if partial else 200)
        if partial:
            self.send_header("Content-Range", f"bytes {first}-{len(srv.body) - 1}/{len(srv.body)}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", srv.etag)
        self.send_header("Content-Type", srv.content_type)
        self.end_headers()
        if behaviour == "drop":
            self.wfile.write(data[: len(data) // 2 if srv.drop_after is None else srv.drop_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)


@pytest.fixture(name="server")
def file_server() -> Iterator[FileServer]:
    """A :class:`FileServer` running in a thread for the test."""
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(name="hook")
def download_hook() -> SesExportJobHook:
    """A hook that downloads without pausing between attempts (GetExportJob comes from a Stubber)."""
    h = SesExportJobHook(aws_conn_id=None, region_name="us-east-1")
    h.download_retry_delay = 0.0
    return h
