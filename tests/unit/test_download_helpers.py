"""Download helpers without a network: URL parsing, error text redaction, size/ETag bookkeeping, retries."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_sesexport.hooks._download import (
    ExportStream,
    SesExportDownloadError,
    _Rejected,
    _s3_error_text,
    _Transient,
    parse_s3_url,
)
from tests.leakcheck import plant_url


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/a/b%20c.csv") == ("bucket", "a/b c.csv")
    for bad in ("s3://bucket", "s3:///key", "https://bucket/key"):
        with pytest.raises(SesExportDownloadError, match="expected s3://bucket/key"):
            parse_s3_url(bad)


def test_s3_error_text_keeps_code_and_message_only() -> None:
    body = (
        b"<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match</Message>"
        b"<StringToSign>AWS4-HMAC-SHA256 secret</StringToSign><SignatureProvided>abc123</SignatureProvided></Error>"
    )
    text = _s3_error_text(body)
    assert text == "SignatureDoesNotMatch: The signature does not match"
    assert _s3_error_text(b"garbage") == "no error details"
    url_in_message = b"<Code>X</Code><Message>see https://h/p?X-Amz-Signature=s3cr3t</Message>"
    assert "s3cr3t" not in _s3_error_text(url_in_message)


class FakeHook:
    """What a stream is given: a URL refresher handing out a new planted URL per call; the readers are scripted."""

    log = logging.getLogger("fake")

    def __init__(self) -> None:
        self.calls = 0

    def fresh_url(self) -> tuple[str, dt.datetime, dict[str, Any]]:
        self.calls += 1
        return plant_url("https://h/f"), dt.datetime.now(dt.timezone.utc), {"JobId": "job"}

    def no_s3(self) -> Any:
        raise AssertionError("an https download asked for the S3 client")

    def stream(self, **kwargs: Any) -> ExportStream:
        return ExportStream("job", self.fresh_url, self.no_s3, log=self.log, **kwargs)


def scripted(stream: ExportStream, attempts: list[Any]) -> None:
    """Replace the https reader: each attempt yields some bytes, then raises or ends."""
    script = iter(attempts)

    def reader() -> Iterator[bytes]:
        step = next(script)
        stream.size = 10
        data, error = step
        yield from stream._deliver(iter([data]) if data else iter([]))
        if error is not None:
            raise error

    stream._read_https = reader  # type: ignore[method-assign]


def test_progress_resets_the_failure_budget() -> None:
    hook = FakeHook()
    stream = hook.stream(max_attempts=2, retry_delay=0)
    # Five failures in total, but never two in a row without progress.
    scripted(
        stream,
        [(b"ab", _Transient("drop")), (b"cd", _Rejected("403")), (b"ef", _Transient("drop")), (b"ghij", None)],
    )
    assert b"".join(stream) == b"abcdefghij"
    assert stream.resumes == 3 and hook.calls == 4 and stream.url_refreshes == 3


def test_attempts_without_progress_give_up() -> None:
    hook = FakeHook()
    stream = hook.stream(max_attempts=3, retry_delay=0)
    scripted(stream, [(b"", _Transient("drop"))] * 3)
    with pytest.raises(SesExportDownloadError, match=r"drop; gave up after 3 attempts in a row.*0 bytes received"):
        b"".join(stream)
    assert hook.calls == 3


def test_short_body_without_error_is_resumed() -> None:
    hook = FakeHook()
    stream = hook.stream(retry_delay=0)
    scripted(stream, [(b"abcd", None), (b"efghij", None)])
    assert b"".join(stream) == b"abcdefghij"
    assert stream.resumes == 1


def test_more_bytes_than_announced_is_an_error() -> None:
    stream = FakeHook().stream(retry_delay=0)
    scripted(stream, [(b"0123456789X", None)])
    with pytest.raises(SesExportDownloadError, match="more than the 10 bytes"):
        b"".join(stream)


def test_size_or_etag_change_is_an_error() -> None:
    stream = FakeHook().stream()
    stream._check_total(100, '"a"')
    stream._check_total(100, '"a"')
    with pytest.raises(SesExportDownloadError, match="changed size"):
        stream._check_total(101, '"a"')
    with pytest.raises(SesExportDownloadError, match="changed during the download"):
        stream._check_total(100, '"b"')


def test_skip_drops_exactly_the_delivered_prefix() -> None:
    stream = FakeHook().stream()
    assert b"".join(stream._skip(iter([b"abc", b"defg", b"h"]), 5)) == b"fgh"
    assert b"".join(stream._skip(iter([b"abc"]), 0)) == b"abc"


def test_safe_url_is_redacted() -> None:
    stream = FakeHook().stream().open()
    assert stream.safe_url == "https://h/f?<redacted>"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_chunk_size_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="Invalid chunk_size"):
        FakeHook().stream(chunk_size=bad)


class FakeRaw:
    """``response.raw``: ``read`` of an error body raises ``error`` (when set); ``stream`` yields ``body``."""

    def __init__(self, body: bytes, error: Exception | None = None) -> None:
        self.body, self.error = body, error

    def read(self, amount: int, decode_content: bool = True) -> bytes:
        if self.error is not None:
            raise self.error
        return self.body[:amount]

    def stream(self, amount: int, decode_content: bool = True) -> Iterator[bytes]:
        yield self.body


class FakeResponse:
    def __init__(self, status_code: int, raw: FakeRaw, headers: dict[str, str] | None = None) -> None:
        self.status_code, self.raw, self.headers = status_code, raw, headers or {}
        self.is_redirect = False

    def close(self) -> None:
        pass


class FakeSession:
    """``requests.Session``: each GET answers the next scripted response; remembers the URLs it was given."""

    def __init__(self, responses: list[FakeResponse]) -> None:
        self.responses, self.urls = iter(responses), []

    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        self.urls.append(url)
        return next(self.responses)

    def close(self) -> None:
        pass


def test_a_connection_broken_while_reading_an_error_body_is_transient_resumed_and_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reset while reading a 403's body is retried with a fresh URL, and its text (quoting the URL's signature
    wrapped across lines, which no shape rule catches) is scrubbed with the values the stream knows."""
    from urllib.parse import parse_qs, urlsplit

    from urllib3.exceptions import ProtocolError

    from tests.leakcheck import find_leaks

    hook = FakeHook()
    stream = hook.stream(retry_delay=0).open()
    signature = parse_qs(urlsplit(stream.url or "").query)["X-Amz-Signature"][0]
    reset = ProtocolError(f"Connection reset reading /f?X-Amz-Signature={signature[:20]}\n{signature[20:]}")
    data = b"ISP,VOLUME\n"
    stream._session = session = FakeSession(
        [
            FakeResponse(403, FakeRaw(b"", reset)),
            FakeResponse(200, FakeRaw(data), {"Content-Length": str(len(data))}),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="fake"):
        assert b"".join(stream) == data
    assert stream.resumes == 1 and hook.calls == 2 and session.urls[0] != session.urls[1]
    warning = caplog.text
    assert "connection broken reading the HTTP 403 answer: ProtocolError" in warning
    assert signature[20:] not in warning and signature[:20] not in warning, warning
    assert not find_leaks(warning, "warning")
