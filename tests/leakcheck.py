"""
Session-wide detector of leaked pre-signed URL secrets, by value.

A pre-signed ``S3Url`` is a bearer credential for customer email data. Its secrets are the values of
``X-Amz-Signature``, ``X-Amz-Security-Token`` and ``X-Amz-Credential`` (its access key id). Every URL a
test serves or stubs carries unique values: the emulator's presigner makes and records each one
(:func:`ses_export_emulator.presign.issued_secrets`, also the emulator's
``issued_secrets`` control operation), and tests that stub a URL get it from :func:`plant_url`, which
records its values in the same registry. The check looks for exactly those values, raw, URL-encoded
once or twice, with or without the rest of the URL around them: a value found is a leak whatever
shape the text around it has (a scheme-less ``/f.csv?...`` in a urllib3 error, a URL quoted in
another URL, a header), and nothing else is (the bare word ``X-Amz-Signature`` is no secret).

The only place a full URL may appear is the result operator's explicit ``s3_url`` XCom key. This
module collects, while the unit, e2e and reliability suites run:

* the captured stdout / stderr / log sections of every test phase (on Airflow 3 the task logs written
  by ``dag.test()`` go to stdout through structlog; trigger logs too), and the failure text
  (exception messages and tracebacks) of failed tests;
* every log record that reaches the root logger (Airflow 2 task and trigger logs), rendered with its
  arguments and exception text;
* what tests read through ``capfd`` / ``capsys`` (the e2e suites read task logs that way);
* texts tests hand over explicitly with :func:`record` (exceptions they caught, trigger events);

and, at the end, scans every table of the metadata DB (XCom values except ``key == "s3_url"``,
rendered template fields, trigger events kept in ``next_kwargs``, audit log, ...) and every file under
``$AIRFLOW_HOME/logs``. ``tests/zz_leakcheck`` runs the final check as the session's last test.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from ses_export_emulator import presign

#: The shapes of the secret values the presigner and :func:`plant_url` make: an index into the text
#: (candidates are then looked up among the values issued; a shape alone is never a finding).
CANDIDATE = re.compile(r"[0-9a-f]{64,}|ASIA[A-Z0-9]{16}|" + re.escape(presign.TOKEN_PREFIX) + r"[A-Za-z0-9+/]{80}")

#: Test directories whose output is scanned.
SCANNED_SUITES = ("unit", "e2e", "reliability")

#: XCom keys allowed to carry a full pre-signed URL.
ALLOWED_XCOM_KEYS = frozenset({"s3_url"})

#: Loggers of the test servers themselves (they legitimately see the URLs they serve).
SERVER_LOGGERS = ("ses_export_emulator", "aiohttp", "werkzeug", "moto")


def plant_url(
    base: str = "https://export-bucket.s3.amazonaws.com/exports/job-1/data.csv",
    amz_date: str = "20261101T063000Z",
) -> str:
    """
    A pre-signed-shaped URL with unique secret values, recorded for the leak check: the one way a test
    stubs a URL.

    :param base: the URL without its query string.
    :param amz_date: the ``X-Amz-Date`` value (with ``X-Amz-Expires=300`` it says when the URL expires).
    """
    access_key, token = presign.new_secret_values()
    signature = secrets.token_hex(32)
    presign.record_issued(signature, token, access_key)
    credential = quote(f"{access_key}/{amz_date[:8]}/us-east-1/s3/aws4_request", safe="")
    return (
        f"{base}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={amz_date}"
        f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Security-Token={quote(token, safe='')}"
        f"&X-Amz-Signature={signature}"
    )


def secret_values_of(url: str) -> list[str]:
    """The secret values a URL carries (signature, token, access key id), as recorded: for assertions.

    :param url: a URL from :func:`plant_url` or the emulator.
    """
    return [v for _, v in _candidates(unquote(url)) if presign.is_issued(v)]


def _candidates(text: str) -> Iterable[tuple[int, str]]:
    """``(position, value)`` of every substring shaped like a secret value (each 64-window of a longer hex run)."""
    for match in CANDIDATE.finditer(text):
        run = match.group(0)
        width = 64 if run[0] in "0123456789abcdef" else len(run)
        for i in range(len(run) - width + 1):
            yield match.start() + i, run[i : i + width]


@dataclass
class Finding:
    source: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}: ...{self.excerpt}..."


def find_leaks(text: str, source: str, extra_values: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """
    Every place in ``text`` that carries a secret value recorded in this process (or one of ``extra_values``),
    raw or URL-encoded once or twice.

    :param text: the text.
    :param source: where it came from (for the report).
    :param extra_values: more values to look for (an out-of-process emulator's).
    """
    out: list[Finding] = []
    seen: set[str] = set()
    variants = [text]
    for _ in range(3):  # a token is encoded once in its URL, so a URL quoted twice holds it encoded thrice
        decoded = unquote(variants[-1])
        if decoded == variants[-1]:
            break
        variants.append(decoded)
    for variant in variants:
        for position, value in _candidates(variant):
            if value in seen or not (value in extra_values or presign.is_issued(value)):
                continue
            seen.add(value)
            start = max(0, position - 80)
            excerpt = variant[start : position + len(value) + 40].replace(value, "<SECRET VALUE>").replace("\n", " ")
            out.append(Finding(source, excerpt))
    return out


@dataclass
class Collector:
    """What the session saw: findings so far, plus counters proving the scan was not empty."""

    findings: list[Finding] = field(default_factory=list)
    texts_scanned: int = 0
    chars_scanned: int = 0
    items_scanned: set[str] = field(default_factory=set)
    #: scanned tests that ran DAGs on the metadata DB (the ``airflow_db`` fixture)
    db_users: set[str] = field(default_factory=set)
    active: bool = False
    #: values to look for besides this process's recorded ones (an out-of-process emulator's)
    extra_values: set[str] = field(default_factory=set)

    def scan(self, source: str, text: str) -> None:
        if not text:
            return
        self.texts_scanned += 1
        self.chars_scanned += len(text)
        self.findings.extend(find_leaks(text, source, self.extra_values))


COLLECTOR = Collector()


def record(source: str, text: str) -> None:
    """Hand a text (a caught exception's message, a trigger event, ...) to the session's leak check."""
    COLLECTOR.scan(source, text)


def _in_scanned_suite(nodeid: str) -> bool:
    parts = nodeid.replace("\\", "/").split("/")
    return len(parts) > 1 and parts[0] == "tests" and parts[1] in SCANNED_SUITES


class _RootTee(logging.Handler):
    """Scans every log record emitted while a scanned suite's test runs."""

    def emit(self, record: logging.LogRecord) -> None:
        if not COLLECTOR.active or record.name.startswith(SERVER_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:  # a record whose args do not fit its format: scan both parts
            text = f"{record.msg} {record.args}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        if record.exc_text:
            text += f"\n{record.exc_text}"
        COLLECTOR.scan(f"log record {record.name}", text)


def _tee_capture_fixtures() -> None:
    """
    Scan what tests read through ``capfd`` / ``capsys`` (and what they leave unread at teardown).

    Output a capture fixture takes never reaches the report sections, and the e2e suites read task logs
    through ``capfd``; without this the task logs of exactly those tests would escape the check.
    """
    from _pytest.capture import CaptureFixture

    if getattr(CaptureFixture, "_sesexport_leakcheck", False):
        return
    readouterr = CaptureFixture.readouterr
    close = CaptureFixture.close

    def tee_readouterr(self: Any) -> Any:
        result = readouterr(self)
        if COLLECTOR.active:
            COLLECTOR.scan("capture fixture", f"{result.out}\n{result.err}")
        return result

    def tee_close(self: Any) -> None:
        if getattr(self, "_capture", None) is not None:
            try:
                tee_readouterr(self)
            except Exception:  # never break a test's teardown over the leak check
                pass
        close(self)

    CaptureFixture.readouterr = tee_readouterr  # type: ignore[method-assign]
    CaptureFixture.close = tee_close  # type: ignore[method-assign]
    CaptureFixture._sesexport_leakcheck = True  # type: ignore[attr-defined]


class LeakCheckPlugin:
    """pytest plugin (registered globally by ``tests/zz_leakcheck/conftest.py``)."""

    def __init__(self) -> None:
        _tee_capture_fixtures()
        self.handler = _RootTee(level=logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(self.handler)
        # keep INFO records flowing to the handler (Airflow's task loggers propagate to root on 2.x)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        scanned = _in_scanned_suite(item.nodeid)
        COLLECTOR.active = scanned
        if scanned:
            COLLECTOR.items_scanned.add(item.nodeid)
            if "airflow_db" in getattr(item, "fixturenames", ()):
                COLLECTOR.db_users.add(item.nodeid)
        try:
            yield
        finally:
            COLLECTOR.active = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _in_scanned_suite(report.nodeid):
            return
        for title, content in report.sections:
            COLLECTOR.scan(f"{report.nodeid} [{title}]", content)
        if report.failed:
            COLLECTOR.scan(f"{report.nodeid} [failure]", report.longreprtext)


def log_files(home: Path) -> Iterable[Path]:
    """Every file under ``$AIRFLOW_HOME/logs`` (task logs, trigger logs, dag-processor logs)."""
    logs = home / "logs"
    if logs.is_dir():
        yield from (p for p in logs.rglob("*") if p.is_file())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def scan_metadata_db(db_path: Path, collector: Collector) -> dict[str, int]:
    """
    Scan every row of every table of the SQLite metadata DB; returns rows scanned per table.

    XCom rows whose key is in :data:`ALLOWED_XCOM_KEYS` are the one permitted home of the full URL.
    """
    import sqlite3

    counts: dict[str, int] = {}
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cur = con.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cur.description]
            n = 0
            for row in cur:
                values = dict(zip(columns, row, strict=True))
                if table == "xcom" and values.get("key") in ALLOWED_XCOM_KEYS:
                    continue
                n += 1
                text = "\n".join(_text(v) for v in row)
                label = f"metadata DB {table} " + ", ".join(
                    f"{c}={values[c]!r}" for c in ("dag_id", "task_id", "key") if c in values
                )
                collector.scan(label, text)
            counts[table] = n
    finally:
        con.close()
    return counts


def scan_log_files(home: Path, collector: Collector) -> int:
    n = 0
    for path in log_files(home):
        collector.scan(f"log file {path.relative_to(home)}", path.read_text("utf-8", "replace"))
        n += 1
    return n


def airflow_home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])
