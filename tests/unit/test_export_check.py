"""
The content check (``records.ExportCheck``): only an export of the job's DataFormat gets through, whatever the chunking.

Good files are the emulator's renderings of the four real layouts (with and without records, gzip, byte order mark);
bad ones are what answers in S3's place: web pages, XML error documents, JSON errors, other formats.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_sesexport.exceptions import SesExportContentError, SesExportDownloadError
from airflow_provider_sesexport.records import CHECK_HEAD_BYTES, ExportCheck, iter_records
from ses_export_emulator.exportfile import build_export_file

#: What the error says when the content type alone shows it is not an export.
TYPE = "not a content type an export is served with"
START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
#: Planted in every bad body: it must never appear in an error (a page may hold anything, a signed URL included).
PLANTED = "X-Amz-Signature=planted0123456789abcdef"
HTML = (
    f'<!DOCTYPE html>\n<html><head><title>Proxy error</title></head><body><a href="?{PLANTED}">retry</a></body></html>'
)
XML = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>{PLANTED}</Message></Error>'


@dataclass
class FakeDownload:
    """What ExportCheck reads of an ExportStream."""

    data_format: str | None
    content_type: str | None = None
    size: int | None = None
    job_id: str = "job-0123"
    job: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.job = {"ExportDestination": {"DataFormat": self.data_format} if self.data_format else {}}


def export(source_type: str, data_format: str, records: int = 40) -> bytes:
    """A real layout rendered by the emulator; ``records=0`` gives the file of an export with no rows."""
    if source_type == "MESSAGE_INSIGHTS":
        source: dict[str, Any] = {"StartDate": START, "EndDate": START + dt.timedelta(days=1), "MaxResults": 30}
    else:
        source = {
            "StartDate": START,
            "EndDate": START + dt.timedelta(days=1),
            "Dimensions": {"ISP": ["Gmail", "Yahoo"]},
            "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
        }
    file = build_export_file(source_type, source, data_format, seed=7)
    data = file.read_all()
    if records == 0:
        data = file.header + file.footer
    return data


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def drain(source: Iterator[bytes], into: list[bytes]) -> None:
    """Collect what ``source`` passes on into ``into`` (kept when it raises)."""
    for chunk in source:
        into.append(chunk)


def run(data: bytes, download: FakeDownload, size: int) -> bytes:
    """Pass ``data`` through the check in chunks of ``size``; return what came out."""
    check = ExportCheck(download)
    return b"".join(check.checked(chunks(data, size)))


LAYOUTS = [(s, f) for s in ("MESSAGE_INSIGHTS", "METRICS_DATA") for f in ("CSV", "JSON")]


@pytest.mark.parametrize(("source_type", "data_format"), LAYOUTS)
@pytest.mark.parametrize("records", [40, 0])
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_every_real_layout_passes_whatever_the_chunking(
    source_type: str, data_format: str, records: int, size: int
) -> None:
    data = export(source_type, data_format, records)
    content_type = "text/csv" if data_format == "CSV" else "application/json"
    assert run(data, FakeDownload(data_format, content_type, len(data)), size) == data
    assert (len(list(iter_records(data))) == 0) == (records == 0)  # the fixture is what it says


@pytest.mark.parametrize(("source_type", "data_format"), LAYOUTS)
# How S3 labels an export's object is up to whoever wrote it: only a web page's or XML's type is refused.
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "binary/octet-stream",
        "application/octet-stream",
        "text/plain; charset=utf-8",
        "text/csv",
        "application/json",
    ],
)
def test_generic_content_types_and_none_pass(source_type: str, data_format: str, content_type: str | None) -> None:
    data = export(source_type, data_format)
    assert run(data, FakeDownload(data_format, content_type), 4096) == data


@pytest.mark.parametrize(("source_type", "data_format"), LAYOUTS)
def test_gzip_and_byte_order_mark_pass(source_type: str, data_format: str) -> None:
    data = export(source_type, data_format)
    for body in (gzip.compress(data), codecs.BOM_UTF8 + b"\n  " + data):
        assert run(body, FakeDownload(data_format, "application/gzip"), 3) == body


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_an_empty_file_passes_as_no_records(body: bytes) -> None:
    check = ExportCheck(FakeDownload("CSV", "text/csv", len(body)))
    assert b"".join(check.checked([body])) == body
    assert check.passed


@pytest.mark.parametrize(
    ("data_format", "content_type", "body", "found"),
    [
        ("CSV", "text/html", HTML, TYPE),
        ("CSV", "text/html; charset=utf-8", "", TYPE),  # an empty page is still a page
        ("JSON", "text/html", HTML, TYPE),
        ("CSV", None, HTML, "HTML or XML markup"),  # no content type: the first bytes decide
        ("CSV", "binary/octet-stream", HTML, "HTML or XML markup"),
        ("JSON", "application/json", HTML, "HTML or XML markup"),  # a content type that lies
        ("CSV", "application/xml", XML, TYPE),
        ("JSON", None, XML, "HTML or XML markup"),
        ("CSV", None, f'{{"message": "{PLANTED}"}}', "JSON"),
        ("JSON", "application/json", f'{{"message": "{PLANTED}"}}', "neither a Message Insights nor a metrics"),
        ("JSON", None, f'["{PLANTED}"]', "first element is not an object"),
        ("JSON", None, f'{{"messageid": "{PLANTED}"', "first object is not complete"),
        ("JSON", None, "[\n", "array that is not closed"),
        ("CSV", "text/csv", f"name,value\n{PLANTED},1\n", "not a Message Insights or metrics CSV header"),
        ("CSV", None, f"{PLANTED}", "not a Message Insights or metrics CSV header"),
        ("CSV", None, "x" * (CHECK_HEAD_BYTES + 10), f"without a header line in its first {CHECK_HEAD_BYTES} bytes"),
    ],
)
@pytest.mark.parametrize("size", [1, 5, 1 << 20])
def test_what_is_not_an_export_fails_naming_job_and_what_came(
    data_format: str, content_type: str | None, body: str, found: str, size: int
) -> None:
    data = body.encode()
    download = FakeDownload(data_format, content_type, len(data))
    passed: list[bytes] = []
    check = ExportCheck(download)
    with pytest.raises(SesExportContentError) as err:
        drain(check.checked(chunks(data, size)), passed)
    message = str(err.value)
    assert "'job-0123'" in message
    assert f"not a {data_format} export file" in message
    assert f"got {content_type or 'no content type'}, {len(data)} bytes" in message
    assert found in message
    assert PLANTED not in message and "planted" not in message
    # Nothing reached the consumer past the point where the content could be known for what it is.
    assert len(b"".join(passed)) <= max(CHECK_HEAD_BYTES + 10, 0)
    assert isinstance(err.value, SesExportDownloadError)  # retries apply: the next try may reach S3


def test_html_is_stopped_before_any_byte_is_passed_on_when_it_comes_in_one_chunk() -> None:
    check = ExportCheck(FakeDownload("CSV", "text/html", 120))
    received = []
    with pytest.raises(SesExportContentError, match=f"got text/html, 120 bytes, {TYPE}"):
        drain(check.checked([HTML.encode()]), received)
    assert received == []


def test_an_unknown_size_reports_the_bytes_received() -> None:
    check = ExportCheck(FakeDownload("CSV", None, None))
    with pytest.raises(SesExportContentError, match=r"got no content type, 5 bytes, HTML or XML markup"):
        check.update(b"<p>hi")


def test_truncated_gzip_fails_as_content() -> None:
    data = gzip.compress(export("MESSAGE_INSIGHTS", "CSV"))[:15]
    with pytest.raises(SesExportContentError, match="truncated gzip"):
        run(data, FakeDownload("CSV"), 4)


def test_without_a_data_format_either_format_passes() -> None:
    for data_format in ("CSV", "JSON"):
        data = export("METRICS_DATA", data_format)
        assert run(data, FakeDownload(None), 9) == data
    with pytest.raises(SesExportContentError, match="not a CSV or JSON export file"):
        run(HTML.encode(), FakeDownload(None), 9)


def test_a_hostile_content_type_is_scrubbed_and_capped_in_the_error() -> None:
    """The server's Content-Type is its own text: a signed URL's values in it are scrubbed, and it is cut short."""
    from urllib.parse import parse_qs, urlsplit

    from airflow_provider_sesexport.records import MAX_CONTENT_TYPE_CHARS
    from tests.leakcheck import find_leaks, plant_url

    signature = parse_qs(urlsplit(plant_url()).query)["X-Amz-Signature"][0]
    content_type = f"text/html; X-Amz-Signature={signature}; padding={'p' * 5000}"
    assert find_leaks(content_type[:MAX_CONTENT_TYPE_CHARS], "content type")  # the value is within the cap
    with pytest.raises(SesExportContentError) as err:
        drain(ExportCheck(FakeDownload("CSV", content_type, 10)).checked(chunks(b"<html>x</html>", 4)), [])
    message = str(err.value)
    assert signature not in message and not find_leaks(message, "error"), message
    assert "got text/html; X-Amz-Signature=<redacted>; padding=ppp" in message and "p..., 10 bytes" in message
    assert "p" * 100 not in message and len(message) < MAX_CONTENT_TYPE_CHARS + 250
