"""
The secret-leakage check: no secret value of a pre-signed URL (planted by the tests, issued by the emulator)
anywhere but the ``s3_url`` XCom key.

Runs last in the session (see ``conftest.py``), after the unit, e2e and reliability suites, and scans what
:mod:`tests.leakcheck` collected while they ran (captured task / trigger output, log records,
exception messages, failure reports), every row of the metadata DB (XCom except ``s3_url``, rendered
template fields, trigger event payloads in ``next_kwargs``, ...) and every file under
``$AIRFLOW_HOME/logs``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests import leakcheck

SIGNED = leakcheck.plant_url("https://bucket.s3.amazonaws.com/exports/x.csv")


def _db_path() -> Path:
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert url.startswith("sqlite:///"), url
    return Path(url[len("sqlite:///") :])


def test_detector_finds_signed_urls_and_allows_only_the_s3_url_key(tmp_path: Path) -> None:
    """The check can fail: planted values are found in every form, redacted forms and look-alikes are not,
    XCom rules hold."""
    from urllib.parse import quote, urlsplit

    from airflow_provider_sesexport.utils.redaction import redact_text

    values = leakcheck.secret_values_of(SIGNED)
    assert len(values) == 3, values  # signature, token, access key id
    parts = urlsplit(SIGNED)
    for form in (
        SIGNED,
        f"Max retries exceeded with url: {parts.path}?{parts.query} (Caused by NewConnectionError)",
        quote(SIGNED, safe=""),
        quote(quote(SIGNED, safe=""), safe=""),
        SIGNED.replace("&", "&amp;"),
    ):
        found = leakcheck.find_leaks(f"log line {form}", "t")
        assert len(found) == 3, (form, found)
        assert not leakcheck.find_leaks(redact_text(f"log line {form}"), "t"), redact_text(form)
    for value in values:
        assert len(leakcheck.find_leaks(f"x{value}y", "t")) == 1  # alone, glued to other text
        assert value not in str(leakcheck.find_leaks(value, "t"))  # the report does not repeat the secret
    # the parameters' names, a redacted URL and an unplanted value of the same shape are no findings
    assert not leakcheck.find_leaks("job X-AMZ-SIGNATURE failed; X-Amz-Credential: see docs", "t")
    assert not leakcheck.find_leaks("https://bucket.s3.amazonaws.com/exports/x.csv?<redacted>", "t")
    assert not leakcheck.find_leaks("?X-Amz-Signature=" + "0f" * 32, "t")
    # an out-of-process emulator's values are looked for when handed over
    assert leakcheck.find_leaks("?X-Amz-Signature=" + "0f" * 32, "t", {"0f" * 32})

    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE xcom (dag_id TEXT, task_id TEXT, key TEXT, value BLOB)")
    con.execute("CREATE TABLE rendered_task_instance_fields (dag_id TEXT, task_id TEXT, rendered_fields TEXT)")
    con.execute("INSERT INTO xcom VALUES ('d', 'result', 's3_url', ?)", (f'"{SIGNED}"'.encode(),))
    con.execute("INSERT INTO xcom VALUES ('d', 'result', 'return_value', ?)", (b'{"job_id": "j"}',))
    con.commit()
    clean = leakcheck.Collector()
    counts = leakcheck.scan_metadata_db(db, clean)
    assert counts["xcom"] == 1 and not clean.findings
    con.execute("INSERT INTO xcom VALUES ('d', 'copy', 'return_value', ?)", (f'"{SIGNED}"'.encode(),))
    con.execute("INSERT INTO rendered_task_instance_fields VALUES ('d', 'copy', ?)", (f'{{"url": "{SIGNED}"}}',))
    con.commit()
    con.close()
    dirty = leakcheck.Collector()
    leakcheck.scan_metadata_db(db, dirty)
    assert {f.source.split(" ")[2] for f in dirty.findings} == {"xcom", "rendered_task_instance_fields"}


def test_no_presigned_url_leaked_anywhere(airflow_db: Path, request: pytest.FixtureRequest) -> None:
    collector = leakcheck.COLLECTOR
    db_counts = leakcheck.scan_metadata_db(_db_path(), collector)
    n_files = leakcheck.scan_log_files(leakcheck.airflow_home(), collector)

    ran_suites = {nodeid.split("/")[1] for nodeid in collector.items_scanned}
    print(
        f"leak check: {len(collector.items_scanned)} tests of {sorted(ran_suites)} observed, "
        f"{collector.texts_scanned} texts / {collector.chars_scanned} chars scanned, {n_files} log files, "
        f"metadata rows: xcom={db_counts.get('xcom', 0)}, "
        f"rendered_task_instance_fields={db_counts.get('rendered_task_instance_fields', 0)}, "
        f"task_instance={db_counts.get('task_instance', 0)}"
    )
    # the scan saw what those suites produced (otherwise zero findings would prove nothing)
    if collector.items_scanned:
        assert collector.texts_scanned > len(collector.items_scanned)
    if collector.db_users:
        assert db_counts.get("task_instance", 0) > 0
    assert not collector.findings, "pre-signed URLs leaked:\n" + "\n".join(map(str, collector.findings[:50]))
