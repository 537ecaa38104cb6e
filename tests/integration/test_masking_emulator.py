"""
The secrets masker knows a GetExportJob answer's URL secrets before botocore logs the answer (its DEBUG log of the
response body), over real HTTP against the emulator.
"""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from tests import leakcheck
from tests.reliability.helpers import create_job

pytestmark = pytest.mark.integration


class _Snapshot(logging.Handler):
    """At each botocore DEBUG record quoting the response body: what the masker had been given by then."""

    def __init__(self, registered: set[str]) -> None:
        super().__init__(logging.DEBUG)
        self.registered = registered
        self.seen: list[tuple[str, set[str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "S3Url" in text:
            self.seen.append((text, set(self.registered)))


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED"])
def test_urls_are_masked_before_botocore_logs_the_response(ses_export_emulator: Any, status: str) -> None:
    emu = ses_export_emulator
    job_id = create_job(emu)
    (emu.complete_job if status == "COMPLETED" else emu.fail_job)(job_id)
    registered: set[str] = set()
    snapshot = _Snapshot(registered)
    botocore_log = logging.getLogger("botocore.parsers")
    old_level = botocore_log.level
    botocore_log.setLevel(logging.DEBUG)
    botocore_log.addHandler(snapshot)
    try:
        with mock.patch("airflow_provider_sesexport.utils.redaction.mask_secret", side_effect=registered.add):
            job = SesExportJobHook(aws_conn_id="aws_default").get_export_job(job_id)
    finally:
        botocore_log.removeHandler(snapshot)
        botocore_log.setLevel(old_level)
    url = job["ExportDestination"].get("S3Url") or job["FailureInfo"]["FailedRecordsS3Url"]
    values = leakcheck.secret_values_of(url)
    assert len(values) == 3, url
    assert snapshot.seen, "botocore logged no response body: the row proves nothing"
    for text, known in snapshot.seen:
        assert any(v in text for v in values)
        assert set(values) <= known, "botocore logged the URL before the masker knew its secret values"
