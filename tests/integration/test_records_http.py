"""
``SesExportJobHook.iter_export_records`` over real HTTP: the four real layouts served from 127.0.0.1.

GetExportJob comes from botocore's Stubber (validated against the service model) and names the
layout (``ExportSourceType``, ``DataFormat``); its ``S3Url`` points at a stdlib server that serves
the bytes built from the layout contract, honours ``Range`` and can drop the connection mid-file.
"""

from __future__ import annotations

import datetime as dt
import gzip
from typing import Any

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import SesExportRecordsError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.records import iter_records
from tests.integration.file_server import FileServer
from tests.unit.responses import job_response
from tests.unit.test_records import INSIGHTS_ROWS, LAYOUTS, METRICS_ROWS

pytestmark = pytest.mark.integration
CONTENT_TYPES = {"CSV": "text/csv", "JSON": "application/json"}


def completed(server: FileServer, source_type: str, data_format: str, n: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    url = (
        f"{server.base}/exports/job-1/file?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={now:%Y%m%dT%H%M%SZ}"
        f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=sig{n:04d}"
    )
    overrides: dict[str, Any] = {
        "ExportSourceType": source_type,
        "ExportDestination": {"DataFormat": data_format, "S3Url": url},
    }
    if source_type == "MESSAGE_INSIGHTS":
        overrides["ExportDataSource"] = {
            "MessageInsightsDataSource": {
                "StartDate": dt.datetime(2026, 9, 23, tzinfo=dt.timezone.utc),
                "EndDate": dt.datetime(2026, 9, 24, tzinfo=dt.timezone.utc),
            }
        }
    return job_response("COMPLETED", **overrides)


def stub_jobs(stubber: Stubber, server: FileServer, source_type: str, data_format: str, count: int) -> None:
    for n in range(count):
        stubber.add_response("get_export_job", completed(server, source_type, data_format, n), {"JobId": "job-1"})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_records_of_each_layout(hook: SesExportJobHook, server: FileServer, layout: str) -> None:
    build, source_type, data_format = LAYOUTS[layout]
    server.body, server.content_type = build(), CONTENT_TYPES[data_format]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, source_type, data_format, 1)
        records = list(hook.iter_export_records("job-1", chunk_size=7))
        stubber.assert_no_pending_responses()
    assert records == list(iter_records(build(), source_type=source_type, data_format=data_format))
    assert len(records) == len(INSIGHTS_ROWS if source_type == "MESSAGE_INSIGHTS" else METRICS_ROWS)
    if source_type == "MESSAGE_INSIGHTS":
        assert records[0]["sendtimestamp"] == dt.datetime(2026, 9, 23, 14, 5, 7, 123000, tzinfo=dt.timezone.utc)
    else:
        assert 120.0 in (records[0].get("SEND_VOLUME"), records[0].get("metrics", {}).get("SEND_VOLUME"))


def test_dropped_connection_resumes_without_losing_a_record(hook: SesExportJobHook, server: FileServer) -> None:
    build, source_type, data_format = LAYOUTS["insights-csv"]
    server.body, server.script = build(), ["drop", "ok"]
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, source_type, data_format, 2)  # the resume fetches a fresh URL
        records = list(hook.iter_export_records("job-1", chunk_size=16))
    assert records == list(iter_records(build()))
    assert server.ranges == [None, f"bytes={len(build()) // 2}-"]


def test_gzip_file_is_read(hook: SesExportJobHook, server: FileServer) -> None:
    build, source_type, data_format = LAYOUTS["metrics-json"]
    server.body, server.content_type = gzip.compress(build()), "application/gzip"
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, source_type, data_format, 1)
        assert list(hook.iter_export_records("job-1")) == list(iter_records(build()))


def test_file_not_in_the_jobs_layout_is_a_typed_error(hook: SesExportJobHook, server: FileServer) -> None:
    server.body = LAYOUTS["metrics-csv"][0]()
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, "MESSAGE_INSIGHTS", "CSV", 1)
        with pytest.raises(SesExportRecordsError, match="MESSAGE_INSIGHTS, but the file's CSV header has no messageid"):
            list(hook.iter_export_records("job-1"))


def test_stopping_early_releases_the_download(
    hook: SesExportJobHook, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_sesexport.hooks import _download

    closed: list[str] = []
    original = _download.ExportStream.close

    def close(self: _download.ExportStream) -> None:
        closed.append(self.job_id)
        original(self)

    monkeypatch.setattr(_download.ExportStream, "close", close)
    build, source_type, data_format = LAYOUTS["insights-json"]
    server.body = build()
    with Stubber(hook.conn) as stubber:
        stub_jobs(stubber, server, source_type, data_format, 1)
        records = hook.iter_export_records("job-1", chunk_size=8)
        assert next(records)["messageid"] == "0100018a-0001"
        assert closed == []
        records.close()
    assert closed == ["job-1"]
    assert server.ranges == [None]
