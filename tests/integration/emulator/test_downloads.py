"""Export files: content, determinism, Range, HEAD, expiry, signatures, download faults."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta
from http.client import HTTPConnection, IncompleteRead
from typing import Any
from urllib.parse import urlsplit

import pytest

from ses_export_emulator import SesExportEmulator
from ses_export_emulator.exportfile import MESSAGE_INSIGHTS_COLUMNS

from .conftest import NO_RETRIES
from .helpers import START, create, download, http, insights_source, metrics_source, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture
def emu(ses_export_emulator_factory: Any) -> SesExportEmulator:
    """A fast emulator that also reports ``ExportedRecordsCount``, to check it against the files."""
    return ses_export_emulator_factory(create_rate_limit=None, exported_records_count=True)


def _completed(client: Any, source: dict[str, Any], data_format: str = "CSV") -> dict[str, Any]:
    job = wait_status(client, create(client, source, data_format))
    assert job["JobStatus"] == "COMPLETED"
    return job


def _fetch(job: dict[str, Any]) -> bytes:
    status, headers, body = download(job["ExportDestination"]["S3Url"])
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    assert headers["ETag"].startswith('"')
    return body


def _records(body: bytes, data_format: str) -> list[dict[str, Any]]:
    """The records of a file in a real SES layout (CSV: the trailing empty column dropped)."""
    if data_format == "JSON":
        return list(json.loads(body))
    header, *rows = csv.reader(io.StringIO(body.decode()))
    if header[-1] == "":  # Message Insights: every line ends with a comma
        header, rows = header[:-1], [row[:-1] for row in rows]
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
@pytest.mark.parametrize("max_results", [None, 1, 37])
def test_message_insights_rows(client: Any, data_format: str, max_results: int | None) -> None:
    job = _completed(client, insights_source(max_results), data_format)
    rows = _records(_fetch(job), data_format)
    messages = max_results or 1000  # the default MaxResults; 2.5 days hold 36,000 messages
    assert job["Statistics"] == {"ProcessedRecordsCount": 36_000, "ExportedRecordsCount": len(rows)}
    assert len({r["messageid"] for r in rows}) == messages <= len(rows)  # one row per recipient
    assert set(rows[0]) <= set(MESSAGE_INSIGHTS_COLUMNS)
    assert [r["sendtimestamp"] for r in rows] == sorted(r["sendtimestamp"] for r in rows)


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
def test_vdm_rows_are_combinations_of_dimension_values(client: Any, data_format: str) -> None:
    dims = {"ISP": ["Gmail", "Yahoo, Inc."], "EMAIL_IDENTITY": ["a@example.com"]}
    metrics = [
        {"Name": "SEND", "Aggregation": "VOLUME"},
        {"Name": "DELIVERY", "Aggregation": "RATE"},
        {"Name": "OPEN", "Aggregation": "RATE"},
    ]
    job = _completed(client, metrics_source(dims, metrics, START, START + timedelta(days=4)), data_format)
    rows = _records(_fetch(job), data_format)
    assert job["Statistics"]["ExportedRecordsCount"] == len(rows) == 2
    if data_format == "CSV":
        assert list(rows[0]) == ["ISP", "EMAIL_IDENTITY", "SEND_VOLUME", "DELIVERY_RATE", "OPEN_RATE"]
        values = [{k: float(v) for k, v in r.items() if k.endswith(("_VOLUME", "_RATE"))} for r in rows]
        combos = {(r["ISP"], r["EMAIL_IDENTITY"]) for r in rows}
    else:
        values = [r["metrics"] for r in rows]
        combos = {(r["isp"], r["email_identity"]) for r in rows}
    assert combos == {("Gmail", "a@example.com"), ("Yahoo, Inc.", "a@example.com")}
    for value in values:
        assert value["SEND_VOLUME"] > 0 and 0.9 < value["DELIVERY_RATE"] <= 1 and 0 <= value["OPEN_RATE"] <= 1


def test_same_seed_same_bytes(ses_export_emulator_factory: Any) -> None:
    bodies = []
    for seed in (3, 3, 4):
        emu = ses_export_emulator_factory(seed=seed, create_rate_limit=None)
        client = emu.client(config=NO_RETRIES)
        bodies.append(_fetch(_completed(client, insights_source(50))))
    assert bodies[0] == bodies[1] != bodies[2]


def test_row_multiplier_scales_rows_and_size(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(row_multiplier=25, create_rate_limit=None, exported_records_count=True)
    client = emu.client(config=NO_RETRIES)
    job = _completed(client, insights_source(100))
    status, headers, body = http("HEAD", job["ExportDestination"]["S3Url"])
    assert status == 200 and body == b""
    full = _fetch(job)
    assert int(headers["Content-Length"]) == len(full)
    rows = _records(full, "CSV")
    assert job["Statistics"]["ExportedRecordsCount"] == len(rows) >= 2500
    assert len({r["messageid"] for r in rows}) == 2500  # 25 x 100 messages, each with fresh ids


def test_range_requests(client: Any) -> None:
    job = _completed(client, insights_source(300))
    url = job["ExportDestination"]["S3Url"]
    full = _fetch(job)
    size = len(full)
    for first, last in [(0, 0), (0, 99), (5, 1000), (size - 10, size - 1), (size - 1, size + 50), (123, 123)]:
        status, headers, body = download(url, {"Range": f"bytes={first}-{last}"})
        assert status == 206
        assert body == full[first : last + 1]
        assert headers["Content-Range"] == f"bytes {first}-{min(last, size - 1)}/{size}"
        assert int(headers["Content-Length"]) == len(body)
    status, headers, body = download(url, {"Range": "bytes=-77"})
    assert status == 206 and body == full[-77:]
    status, headers, body = download(url, {"Range": "bytes=4000-"})
    assert status == 206 and body == full[4000:]
    status, headers, body = download(url, {"Range": f"bytes={size}-{size + 10}"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and b"InvalidRange" in body
    status, headers, _ = download(url, {"Range": "bytes=10-5"})  # invalid: ignored, whole object
    assert status == 200


def test_url_expires_after_scaled_300s_and_get_returns_fresh_url(ses_export_emulator_factory: Any) -> None:
    # 300 s -> 3 s: room for the first download on a loaded machine; the expiry is polled for
    emu = ses_export_emulator_factory(time_scale=0.01, create_rate_limit=None)
    client = emu.client(config=NO_RETRIES)
    job = _completed(client, insights_source(5))
    url = job["ExportDestination"]["S3Url"]
    query = urlsplit(url).query
    assert "X-Amz-Expires=300" in query and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in query
    assert download(url)[0] == 200
    deadline = time.monotonic() + 30
    while (answer := download(url))[0] == 200:
        assert time.monotonic() < deadline, "the URL never expired"
        time.sleep(0.05)
    status, headers, body = answer
    assert status == 403 and headers["Content-Type"].startswith("application/xml")
    assert b"<Code>AccessDenied</Code>" in body and b"<Message>Request has expired</Message>" in body
    fresh = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert fresh != url
    assert download(fresh)[0] == 200
    again = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert again != fresh
    assert emu.stats()["downloads"]["denied"] == 1


def test_expire_urls_now_and_bad_signatures(emu: SesExportEmulator, client: Any) -> None:
    job = _completed(client, insights_source(5))
    url = job["ExportDestination"]["S3Url"]
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    status, _, body = download(tampered)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, _, body = download(url.split("?")[0])
    assert status == 403 and b"AccessDenied" in body
    other = url.replace(job["JobId"] + "/", "other-job/")
    assert download(other)[0] == 403
    assert emu.expire_urls() >= 1
    status, _, body = download(url)
    assert status == 403 and b"Request has expired" in body
    emu.set_faults(expire_urls_immediately=True)
    expired = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert download(expired)[0] == 403
    emu.clear_faults()
    assert download(client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"])[0] == 200


def test_failed_records_url_and_missing_files(emu: SesExportEmulator, client: Any) -> None:
    emu.fail_next(1)
    failed = wait_status(client, create(client))
    status, _, body = download(failed["FailureInfo"]["FailedRecordsS3Url"])
    assert status == 200 and body.startswith(b"record,")
    done = _completed(client, insights_source(5))
    emu.delete_job(done["JobId"])
    status, _, body = download(done["ExportDestination"]["S3Url"])
    assert status == 404 and b"NoSuchKey" in body


def test_download_dropped_after_k_bytes(emu: SesExportEmulator, client: Any) -> None:
    job = _completed(client, insights_source(2000))
    url = urlsplit(job["ExportDestination"]["S3Url"])
    emu.set_faults(download_drop_after=10_000)
    conn = HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    response = conn.getresponse()
    assert response.status == 200
    total = int(response.getheader("Content-Length"))
    assert total > 10_000
    with pytest.raises(IncompleteRead) as info:
        response.read()
    assert len(info.value.partial) == 10_000
    conn.close()
    assert emu.stats()["downloads"]["dropped"] == 1
    emu.clear_faults()
    assert len(_fetch(client.get_export_job(JobId=job["JobId"]))) == total
