"""
SesExportToSqlOperator against hostile export files and database faults, into real SQLite and PostgreSQL.

The export files are planted byte for byte (what the emulator cannot serve: a malformed line mid-file, NUL
bytes, a header in another case with a new column) and read by the package's real reader; only the SES
calls are replaced (GetExportJob's answer and the download). Every table is read back through its own
connection and compared with values planted here.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_sesexport._compat import AIRFLOW_V_3
from airflow_provider_sesexport.exceptions import (
    SesExportInputError,
    SesExportLoadError,
    SesExportRecordsError,
    SesExportTransferError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.records import iter_records
from airflow_provider_sesexport.transfers._sql_load import ExportLoad
from airflow_provider_sesexport.transfers._sql_tables import (
    MESSAGE_INSIGHTS_TABLE,
    METRICS_TABLE,
    NulScrubber,
    table_columns,
)
from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator
from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS
from tests.sql_fixtures import SqlDb

pytestmark = pytest.mark.integration

DAY = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
INSIGHTS = {"MessageInsightsDataSource": {"StartDate": DAY, "EndDate": DAY + dt.timedelta(hours=2)}}


def metrics_source(isps: list[str], day: dt.datetime = DAY) -> dict[str, Any]:
    return {
        "MetricsDataSource": {
            "Dimensions": {"ISP": isps},
            "Namespace": "VDM",
            "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
            "StartDate": day,
            "EndDate": day + dt.timedelta(days=1),
        }
    }


def insights_csv(n: int, tag: str, header: list[str] | None = None, extra: Callable[[int], list[str]] | None = None,
                 subject: Callable[[int], str] | None = None) -> bytes:  # fmt: skip
    """A Message Insights CSV as SES writes it (every field quoted, a trailing comma) with ``n`` unique rows."""
    names = header or list(MESSAGE_INSIGHTS_COLUMNS)
    lines = [",".join(f'"{name}"' for name in names) + ","]
    for i in range(n):
        values = {name: "" for name in MESSAGE_INSIGHTS_COLUMNS}
        values.update(
            messageid=f"{tag}-m{i}",
            sendtimestamp="2026-11-01 00:00:05.123 UTC",
            destination=f"r{i}@example.com",
            subject=subject(i) if subject else f"subject {tag} {i}",
        )
        row = [values[name] for name in MESSAGE_INSIGHTS_COLUMNS] + (extra(i) if extra else [])
        lines.append(",".join(f'"{value}"' for value in row) + ",")
    return ("\n".join(lines) + "\n").encode()


def metrics_csv(values: dict[str, float]) -> bytes:
    lines = ["ISP,SEND_VOLUME", *(f"{isp},{value:.4f}" for isp, value in values.items())]
    return ("\n".join(lines) + "\n").encode()


class FakeSes:
    """GetExportJob answers and export files by job id; ``pace`` runs before each record is yielded."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.pace: Callable[[str, int], None] = lambda job_id, n: None
        self.downloads: list[str] = []

    def add(self, source: dict[str, Any], body: bytes, data_format: str = "CSV", exported: int | None = None) -> str:
        job_id = f"job-{uuid.uuid4().hex[:10]}"
        source_type = "MESSAGE_INSIGHTS" if "MessageInsightsDataSource" in source else "METRICS_DATA"
        self.jobs[job_id] = {
            "JobId": job_id,
            "ExportSourceType": source_type,
            "JobStatus": "COMPLETED",
            "ExportDataSource": source,
            "ExportDestination": {"DataFormat": data_format},
            "Statistics": {"ProcessedRecordsCount": 1, **({"ExportedRecordsCount": exported} if exported else {})},
        }
        self.files[job_id] = body
        return job_id

    def records(self, job_id: str) -> Iterator[dict[str, Any]]:
        self.downloads.append(job_id)
        job = self.jobs[job_id]
        reader = iter_records(
            self.files[job_id], source_type=job["ExportSourceType"], data_format=job["ExportDestination"]["DataFormat"]
        )
        for n, record in enumerate(reader):
            self.pace(job_id, n)
            yield record

    def stream(self, job_id: str) -> FakeStream:
        self.downloads.append(job_id)
        return FakeStream(self, job_id)


class FakeStream:
    """What ``open_export_stream`` returns: the file's bytes one line per chunk, ``pace`` before each record's."""

    def __init__(self, ses: FakeSes, job_id: str) -> None:
        self.job_id, self.job, self.content_type, self.size = job_id, ses.jobs[job_id], None, None
        self._chunks = self._lines(ses)

    def _lines(self, ses: FakeSes) -> Iterator[bytes]:
        for n, line in enumerate(ses.files[self.job_id].splitlines(keepends=True)):
            if n:
                ses.pace(self.job_id, n - 1)
            yield line

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def __next__(self) -> bytes:
        return next(self._chunks)

    def __enter__(self) -> FakeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> FakeSes:
    fake = FakeSes()
    monkeypatch.setattr(SesExportJobHook, "get_export_job", lambda self, job_id: fake.jobs[job_id])
    monkeypatch.setattr(SesExportJobHook, "iter_export_records", lambda self, job_id, **kw: fake.records(job_id))
    monkeypatch.setattr(SesExportJobHook, "open_export_stream", lambda self, job_id, **kw: fake.stream(job_id))
    return fake


def load(db: SqlDb, job_id: str, table: str = "t", **kwargs: Any) -> int:
    return int(operator(db, job_id, table, **kwargs).execute({"ti": _TI()}))  # type: ignore[arg-type]


def operator(db: SqlDb, job_id: str, table: str = "t", **kwargs: Any) -> SesExportToSqlOperator:
    """The operator, built in the calling thread (Airflow 2 builds operators in the main thread only)."""
    return SesExportToSqlOperator(
        task_id=f"load_{uuid.uuid4().hex[:6]}",
        job_id=job_id,
        table=table,
        sql_conn_id=db.conn_id,
        aws_conn_id=None,
        region_name="us-east-1",
        **{"create_table": True, "commit_every": 100, **kwargs},
    )


class _TI:
    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        pass


def insights_ids(db: SqlDb, table: str = "t") -> list[str]:
    return sorted(row[0] for row in db.rows(table, "messageid"))


def test_a_malformed_line_mid_file_leaves_the_table_as_it_was(ses: FakeSes, sql_db: SqlDb) -> None:
    first = ses.add(INSIGHTS, insights_csv(50, "old"))
    load(sql_db, first)
    body = insights_csv(1000, "new").replace(b'"new-m700",', b'"new-m700","broken",', 1)  # 700 rows staged first
    again = ses.add(INSIGHTS, body)

    with pytest.raises(SesExportRecordsError, match="Line 702 of the export file has 14 fields"):
        load(sql_db, again)

    assert insights_ids(sql_db) == sorted(f"old-m{i}" for i in range(50))


def test_nul_characters_are_removed_with_one_warning(
    ses: FakeSes, sql_db: SqlDb, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = ses.add(INSIGHTS, insights_csv(300, "nul", subject=lambda i: f"a\x00b{i}" if i % 100 == 7 else f"s{i}"))
    with caplog.at_level(logging.WARNING):
        assert load(sql_db, job_id) == 300
    subjects = dict(sql_db.rows("t", "messageid, subject"))
    assert subjects["nul-m7"] == "ab7" and subjects["nul-m207"] == "ab207" and subjects["nul-m8"] == "s8"
    warnings = [r.getMessage() for r in caplog.records if "NUL" in r.getMessage()]
    assert len(warnings) == 1 and "removed 3 NUL character(s)" in warnings[0], warnings


def test_a_header_in_another_case_with_a_new_column_loads_every_known_value(
    ses: FakeSes, sql_db: SqlDb, caplog: pytest.LogCaptureFixture
) -> None:
    header = [name.upper() for name in MESSAGE_INSIGHTS_COLUMNS] + ["NEW_COLUMN"]
    job_id = ses.add(INSIGHTS, insights_csv(250, "case", header=header, extra=lambda i: [f"new{i}"]))
    with caplog.at_level(logging.WARNING):
        assert load(sql_db, job_id) == 250
    rows = sql_db.rows("t", "messageid, destination, subject", order="messageid")
    assert sorted(rows) == sorted((f"case-m{i}", f"r{i}@example.com", f"subject case {i}") for i in range(250))
    assert sum("new_column" in r.getMessage() for r in caplog.records) == 1

    # metrics: a dimension column SES added later is left out with one warning, the rest loads
    body = b"ISP,REGION,SEND_VOLUME\nGmail,eu,10.0000\nYahoo,us,20.0000\n"
    metrics_id = ses.add(metrics_source(["Gmail", "Yahoo"]), body)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load(sql_db, metrics_id, table="m") == 2
    assert sorted(sql_db.rows("m", "isp, value")) == [("Gmail", 10.0), ("Yahoo", 20.0)]
    assert sum("'REGION'" in r.getMessage() for r in caplog.records) == 1


def test_a_keyword_table_name_is_quoted(ses: FakeSes, sql_db: SqlDb) -> None:
    job_id = ses.add(INSIGHTS, insights_csv(20, "kw"))
    assert load(sql_db, job_id, table="order") == 20
    assert load(sql_db, job_id, table="order") == 20  # the replace path names it too
    assert len(sql_db.rows('"order"', "messageid")) == 20


def test_a_table_without_any_key_gets_one_copy_per_export(ses: FakeSes, sql_db: SqlDb) -> None:
    create, *_indexes = MESSAGE_INSIGHTS_TABLE.create_statements(sql_db.kind, "bare", None)
    sql_db.run(create)  # no index, no key at all
    job_id = ses.add(INSIGHTS, insights_csv(120, "bare"))
    load(sql_db, job_id, table="bare", create_table=False)
    load(sql_db, job_id, table="bare", create_table=False)
    assert insights_ids(sql_db, "bare") == sorted(f"bare-m{i}" for i in range(120))


class _Explaining:
    """A cursor that runs ``EXPLAIN`` of each statement it is given instead of the statement, keeping the plans."""

    def __init__(self, cursor: Any, explain: str) -> None:
        self.cursor, self.explain = cursor, explain
        self.plans: list[str] = []

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.cursor.execute(f"{self.explain} {sql}", params)
        self.plans.append("\n".join(str(row[-1]) for row in self.cursor.fetchall()))


def test_the_replace_delete_finds_its_rows_through_indexes_on_a_created_table(ses: FakeSes, sql_db: SqlDb) -> None:
    # With the data_source index alone, the DELETE's OR cannot use it and every load scans the whole table. The
    # table holds 200 other exports of 40 rows (random keys, as real data sources and job ids are) and has fresh
    # statistics: the plan checked is the one the database chooses, not one it is forced into
    job_id = ses.add(INSIGHTS, insights_csv(40, "ix"))
    load(sql_db, job_id, table="indexed")
    postgres = sql_db.kind == "postgresql"
    others = "INSERT INTO indexed (messageid, destination, job_id, data_source) " + (
        "SELECT 'm' || g, 'd', md5('job' || (g / 40)), 'MESSAGE_INSIGHTS:' || md5('source' || (g / 40)) "
        "FROM generate_series(0, 7999) AS g"
        if postgres
        else "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 7999) "
        "SELECT 'm' || n, 'd', 'job' || (n / 40), 'MESSAGE_INSIGHTS:' || hex(randomblob(16)) || (n / 40) FROM g"
    )
    sql_db.run(others)
    sql_db.run("ANALYZE indexed" if postgres else "ANALYZE")
    hook = sql_db.hook()
    with closing(hook.get_conn()) as conn:
        load_ = ExportLoad(hook, sql_db.kind, '"indexed"', MESSAGE_INSIGHTS_TABLE, "MESSAGE_INSIGHTS:ix",
                           job_id, replace=True, batch_size=10, scrubber=NulScrubber(job_id))  # fmt: skip
        explaining = _Explaining(conn.cursor(), "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN")
        load_._delete_predecessors(explaining, "%s" if postgres else "?")
        conn.rollback()
    (plan,) = explaining.plans
    if postgres:
        assert "Seq Scan" not in plan, plan
    else:
        assert "SCAN" not in plan.replace("MULTI-INDEX OR", ""), plan
    assert "indexed_data_source" in plan and "indexed_job_id" in plan, plan


def test_a_missing_schema_fails_at_once_naming_it_before_any_read(ses: FakeSes, sql_db: SqlDb) -> None:
    job_id = ses.add(INSIGHTS, insights_csv(5, "s"))
    for create in (True, False):
        with pytest.raises(SesExportInputError, match="schema='nowhere'") as raised:
            load(sql_db, job_id, schema="nowhere", create_table=create)
        assert "AirflowFailException" in [c.__name__ for c in type(raised.value).__mro__]
    assert ses.downloads == []


def test_a_re_export_with_fewer_rows_replaces_its_predecessor_only(ses: FakeSes, sql_db: SqlDb) -> None:
    day2 = DAY + dt.timedelta(days=1)
    other = ses.add(metrics_source(["Gmail", "Yahoo", "Outlook"], day2), metrics_csv({"Gmail": 9, "Yahoo": 9}))
    load(sql_db, other, table="m")
    first = ses.add(metrics_source(["Gmail", "Yahoo", "Outlook"]), metrics_csv({"Gmail": 1, "Yahoo": 2, "Outlook": 3}))
    load(sql_db, first, table="m")
    # the same data source (lists in another order), a new job, one ISP fewer
    again = ses.add(metrics_source(["Outlook", "Yahoo", "Gmail"]), metrics_csv({"Gmail": 5, "Yahoo": 6}))
    load(sql_db, again, table="m")
    load(sql_db, again, table="m")  # the same export twice changes nothing

    rows = sorted(sql_db.rows("m", "isp, value, job_id"))
    assert rows == sorted([("Gmail", 5.0, again), ("Yahoo", 6.0, again), ("Gmail", 9.0, other), ("Yahoo", 9.0, other)])


def test_reloading_a_job_whose_data_source_key_changed_replaces_its_own_rows(ses: FakeSes, sql_db: SqlDb) -> None:
    """The same job loaded again after its data-source key changed (GetExportJob echoing a field it did not before)
    replaces its own rows: a load deletes the rows of its job as well as those of its data source."""
    job = ses.add(metrics_source(["Gmail", "Yahoo"]), metrics_csv({"Gmail": 1, "Yahoo": 2}))
    load(sql_db, job, table="m")
    ses.jobs[job]["ExportDataSource"]["MetricsDataSource"]["Echoed"] = "a field SES added later"
    load(sql_db, job, table="m")

    assert sorted(sql_db.rows("m", "isp, value, job_id")) == [("Gmail", 1.0, job), ("Yahoo", 2.0, job)]


def test_exported_records_count_mismatch_fails_before_the_commit(ses: FakeSes, sql_db: SqlDb) -> None:
    first = ses.add(INSIGHTS, insights_csv(10, "ok"))
    load(sql_db, first)
    short = ses.add(INSIGHTS, insights_csv(30, "short"), exported=31)
    with pytest.raises(SesExportTransferError, match=r"has 30 records but Statistics\.ExportedRecordsCount is 31"):
        load(sql_db, short)
    assert insights_ids(sql_db) == sorted(f"ok-m{i}" for i in range(10))
    assert load(sql_db, ses.add(INSIGHTS, insights_csv(30, "exact"), exported=30)) == 30


def _poll_counts(db: SqlDb, table: str, stop: threading.Event, seen: list[int]) -> None:
    hook = db.hook()
    while not stop.is_set():
        try:
            seen.append(int(hook.get_first(f"SELECT count(*) FROM {table}")[0]))
        except Exception as exc:  # SQLite: "database is locked" during the commit itself
            if "locked" not in str(exc):
                raise
        time.sleep(0.005)


def test_a_concurrent_reader_never_sees_a_partial_export(ses: FakeSes, sql_db: SqlDb) -> None:
    first = ses.add(INSIGHTS, insights_csv(200, "a"))
    load(sql_db, first)
    again = ses.add(INSIGHTS, insights_csv(600, "b"))
    ses.pace = lambda job_id, n: time.sleep(0.002) if n % 50 == 0 else None
    stop, seen = threading.Event(), []  # type: ignore[var-annotated]
    reader = threading.Thread(target=_poll_counts, args=(sql_db, "t", stop, seen))
    reader.start()
    try:
        time.sleep(0.05)
        load(sql_db, again)
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
    # both data sources are the same (same window): the new export replaced the old one in one step
    assert set(seen) == {200, 600}, sorted(set(seen))
    assert insights_ids(sql_db) == sorted(f"b-m{i}" for i in range(600))


def _thread_may_run_operators() -> None:
    """Airflow 2.10's ExecutorSafeguard keeps a thread-local dict only the main thread has: give this thread one."""
    if AIRFLOW_V_3:
        return
    from airflow.models.baseoperator import ExecutorSafeguard

    if not hasattr(ExecutorSafeguard._sentinel, "callers"):
        ExecutorSafeguard._sentinel.callers = {}


def test_two_loads_of_the_same_export_at_once_end_with_one_copy(ses: FakeSes, sql_db: SqlDb) -> None:
    job_id = ses.add(INSIGHTS, insights_csv(400, "twice"))
    both_reading = threading.Barrier(2, timeout=30)
    ses.pace = lambda job_id, n: both_reading.wait() if n == 200 else None  # both staged half, then go on
    errors: list[BaseException] = []

    def run(op: SesExportToSqlOperator) -> None:
        _thread_may_run_operators()
        try:
            op.execute({"ti": _TI()})  # type: ignore[arg-type]
        except BaseException as exc:  # reported below
            errors.append(exc)

    sql_db.run("SELECT 1")  # the SQLite file exists before two threads open it
    load_threads = [threading.Thread(target=run, args=(operator(sql_db, job_id),)) for _ in range(2)]
    for thread in load_threads:
        thread.start()
    for thread in load_threads:
        thread.join(60)
    assert errors == []
    assert insights_ids(sql_db) == sorted(f"twice-m{i}" for i in range(400))


def test_postgres_connection_killed_mid_copy_leaves_the_table_and_is_retried(ses: FakeSes, postgres_db: SqlDb) -> None:
    first = ses.add(INSIGHTS, insights_csv(30, "kept"))
    load(postgres_db, first)
    again = ses.add(INSIGHTS, insights_csv(2000, "cut"))
    killer = postgres_db.hook()
    killed: list[int] = []

    def kill_the_copy(job_id: str, n: int) -> None:
        if n == 1500 and not killed:  # batches 1-14 are in the COPY stream already
            rows = killer.get_records(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'COPY%'"
            )
            killed.append(len(rows))

    ses.pace = kill_the_copy
    with pytest.raises(SesExportLoadError, match="Nothing was committed") as raised:
        load(postgres_db, again)
    assert killed == [1]
    assert not isinstance(raised.value, SesExportInputError)  # an ordinary failure: retries apply
    assert "AirflowFailException" not in [c.__name__ for c in type(raised.value).__mro__]
    assert insights_ids(postgres_db) == sorted(f"kept-m{i}" for i in range(30))
    ses.pace = lambda job_id, n: None
    assert load(postgres_db, again) == 2000  # the retry
    assert len(insights_ids(postgres_db)) == 2000


def test_lineage_names_the_export_and_the_table(ses: FakeSes, sql_db: SqlDb, openlineage: None) -> None:
    job_id = ses.add(metrics_source(["Gmail"]), metrics_csv({"Gmail": 1}))
    op = SesExportToSqlOperator(
        task_id="lineage", job_id=job_id, table="m", sql_conn_id=sql_db.conn_id, aws_conn_id=None,
        region_name="us-east-1", create_table=True,
    )  # fmt: skip
    op.execute({"ti": _TI()})  # type: ignore[arg-type]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("aws+sesv2://us-east-1", f"export-job/{job_id}")]
    (output,) = lineage.outputs
    assert output.name.endswith(".m") and output.namespace.startswith(
        "postgres://127.0.0.1:" if sql_db.kind == "postgresql" else "sqlite://"
    )
    assert output.name == (
        f"{sql_db.hook().get_connection(sql_db.conn_id).schema}.public.m" if sql_db.kind == "postgresql" else "main.m"
    )


def test_a_timestamp_the_database_cannot_read_fails_without_retries(ses: FakeSes, sql_db: SqlDb) -> None:
    """SQLite: the reader parses it; PostgreSQL: the server does (COPY into typed columns). Either way, no retry."""
    first = ses.add(INSIGHTS, insights_csv(10, "ok"))
    load(sql_db, first)
    body = insights_csv(500, "ts").replace(b'"ts-m321","2026-11-01 00:00:05.123 UTC"', b'"ts-m321","yesterday-ish"')
    with pytest.raises(SesExportRecordsError, match="yesterday-ish") as raised:
        load(sql_db, ses.add(INSIGHTS, body))
    assert "AirflowFailException" in [c.__name__ for c in type(raised.value).__mro__]
    assert insights_ids(sql_db) == sorted(f"ok-m{i}" for i in range(10))


def test_timestamps_are_stored_as_the_same_instant_on_every_path(ses: FakeSes, sql_db: SqlDb) -> None:
    body = insights_csv(3, "when").replace(b"2026-11-01 00:00:05.123 UTC", b"2026-11-01 23:59:58.007 UTC")
    load(sql_db, ses.add(INSIGHTS, body))
    (value,) = {row[0] for row in sql_db.rows("t", "sendtimestamp")}
    if isinstance(value, str):  # SQLite: ISO-8601 text
        value = dt.datetime.fromisoformat(value)
    assert value == dt.datetime(2026, 11, 1, 23, 59, 58, 7000, tzinfo=dt.timezone.utc)


def test_loads_of_different_data_sources_at_once_create_the_table_once_and_keep_every_export(
    ses: FakeSes, sql_db: SqlDb
) -> None:
    """As the daily example's mapped loads: six exports at once into a table none of them found (create_table)."""
    jobs = [ses.add(metrics_source(["Gmail"], DAY + dt.timedelta(days=i)), metrics_csv({"Gmail": i})) for i in range(6)]
    ops = [operator(sql_db, job_id, table="daily") for job_id in jobs]
    errors: list[BaseException] = []

    def run(op: SesExportToSqlOperator) -> None:
        _thread_may_run_operators()
        try:
            op.execute({"ti": _TI()})  # type: ignore[arg-type]
        except BaseException as exc:  # reported below
            errors.append(exc)

    sql_db.run("SELECT 1")
    threads = [threading.Thread(target=run, args=(op,)) for op in ops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(sql_db.rows("daily", "job_id, value")) == sorted((job, float(i)) for i, job in enumerate(jobs))


def test_a_message_insights_csv_goes_into_postgresql_as_it_is_and_a_bad_one_record_by_record(
    ses: FakeSes, postgres_db: SqlDb
) -> None:
    """One download when COPY takes the file as it is; a second one (the record reader) only for a bad file."""
    body = insights_csv(400, "fast", subject=lambda i: "" if i % 2 else f'quoted, ""comma"" {i}')
    job_id = ses.add(INSIGHTS, body, exported=400)
    assert load(postgres_db, job_id) == 400
    assert ses.downloads == [job_id]  # the file as it is: the record reader never ran
    rows = dict(postgres_db.rows("t", "messageid, subject"))
    assert rows["fast-m0"] == 'quoted, "comma" 0' and rows["fast-m1"] is None  # "" is null, as the reader has it
    assert {row[0] for row in postgres_db.rows("t", "isp")} == {None}

    ses.downloads.clear()
    blank = ses.add(INSIGHTS, insights_csv(20, "blank").replace(b'\n"blank-m5"', b'\n\n"blank-m5"'))
    assert load(postgres_db, blank) == 20  # COPY refuses a blank line; the reader skips it
    assert ses.downloads == [blank, blank]


def test_a_value_in_the_unnamed_last_column_is_refused_on_every_path(ses: FakeSes, sql_db: SqlDb) -> None:
    load(sql_db, ses.add(INSIGHTS, insights_csv(5, "kept")))
    lines = insights_csv(40, "last").split(b"\n")
    lines[31] += b'"x"'  # the record of last-m30, on line 32
    with pytest.raises(
        SesExportRecordsError, match="Line 32 of the export file has a value in the unnamed last column"
    ):
        load(sql_db, ses.add(INSIGHTS, b"\n".join(lines)))
    assert insights_ids(sql_db) == sorted(f"kept-m{i}" for i in range(5))


def test_a_user_table_named_like_the_staging_table_loads(ses: FakeSes, sql_db: SqlDb) -> None:
    for name in ("ses_export_staging", "ses_export_staging_0"):
        job_id = ses.add(INSIGHTS, insights_csv(25, name))
        assert load(sql_db, job_id, table=name) == 25
        assert insights_ids(sql_db, name) == sorted(f"{name}-m{i}" for i in range(25))


def test_a_locked_table_is_an_ordinary_failure_not_a_missing_table(
    ses: FakeSes, postgres_db: SqlDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that fails on a reachable database (here a lock timeout) says nothing about the table: retries apply."""
    load(postgres_db, ses.add(INSIGHTS, insights_csv(5, "kept")))
    conn_var = f"AIRFLOW_CONN_{postgres_db.conn_id.upper()}"
    conn = json.loads(os.environ[conn_var])
    monkeypatch.setenv(conn_var, json.dumps({**conn, "extra": {"options": "-c lock_timeout=300"}}))
    holder = postgres_db.hook().get_conn()
    try:
        holder.cursor().execute('LOCK TABLE "t" IN ACCESS EXCLUSIVE MODE')
        with pytest.raises(SesExportLoadError, match="lock timeout") as raised:
            load(postgres_db, ses.add(INSIGHTS, insights_csv(5, "late")), create_table=False)
        assert not isinstance(raised.value, SesExportInputError)
    finally:
        holder.rollback()
        holder.close()
    assert insights_ids(postgres_db) == sorted(f"kept-m{i}" for i in range(5))


def test_a_locked_sqlite_database_is_an_ordinary_failure_not_a_missing_table(ses: FakeSes, sqlite_db: SqlDb) -> None:
    load(sqlite_db, ses.add(INSIGHTS, insights_csv(5, "kept")))
    holder = sqlite3.connect(sqlite_db.hook().get_connection(sqlite_db.conn_id).host, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(Exception, match="locked") as raised:
            load(sqlite_db, ses.add(INSIGHTS, insights_csv(5, "late")), create_table=False)
        assert not isinstance(raised.value, SesExportInputError)
    finally:
        holder.rollback()
        holder.close()
    assert insights_ids(sqlite_db) == sorted(f"kept-m{i}" for i in range(5))


class _AutocommitConnection:
    """A DB-API connection that commits every statement until ``autocommit`` is set False (as pyodbc can)."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)

    @property
    def autocommit(self) -> bool:
        return self._conn.isolation_level is None

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._conn.isolation_level = None if value else "DEFERRED"

    def cursor(self) -> Any:
        return self._conn.cursor()

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


class _AutocommitHook(DbApiHook):
    """A hook of another database whose driver commits each statement by default (and says nothing about it)."""

    conn_name_attr = "autocommit_conn_id"
    supports_autocommit = False
    placeholder = "?"  # type: ignore[assignment]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def get_conn(self) -> Any:
        return _AutocommitConnection(self.path)


def test_the_generic_path_is_one_transaction_on_a_driver_that_commits_each_statement(tmp_path: Any) -> None:
    path = str(tmp_path / "other.db")
    for statement in METRICS_TABLE.create_statements("sqlite", "m", None):
        sqlite3.connect(path).execute(statement)
    day = (DAY, DAY + dt.timedelta(days=1))
    hook = _AutocommitHook(path)

    def load_rows(job: str, value: float, check: Callable[[int], None] = lambda n: None) -> int:
        rows = [("example.com", None, f"isp{i}", None, "SEND", "VOLUME", value, *day, job) for i in range(5)]
        export = ExportLoad(hook, None, "m", METRICS_TABLE, "A", job, replace=True, batch_size=2,
                            scrubber=NulScrubber(job))  # fmt: skip
        return export.run(iter(rows), check)

    assert load_rows("job-1", 1.0) == 5

    def refuse(n: int) -> None:
        raise RuntimeError("refused before the commit")

    with pytest.raises(RuntimeError, match="refused before the commit"):
        load_rows("job-2", 2.0, refuse)
    with closing(sqlite3.connect(path)) as reader:
        assert reader.execute("SELECT job_id, value, count(*) FROM m GROUP BY 1, 2").fetchall() == [("job-1", 1.0, 5)]


def test_the_table_check_reads_each_database_catalog(sql_db: SqlDb) -> None:
    """PostgreSQL's and SQLite's own catalogs; SQLAlchemy's inspector for any other database (here on the same one)."""
    for statement in METRICS_TABLE.create_statements(sql_db.kind, "m", None):
        sql_db.run(statement)
    hook = sql_db.hook()
    for database in (sql_db.kind, None):
        assert table_columns(hook, database, "m", None) == set(METRICS_TABLE.names)
        assert table_columns(hook, database, "absent", None) is None
    assert table_columns(hook, sql_db.kind, "m", "nowhere") is None


@pytest.mark.parametrize("form", ["gzip", "bom-crlf", "header-only"])
def test_the_file_path_reads_what_the_reader_reads(ses: FakeSes, postgres_db: SqlDb, form: str) -> None:
    rows = 0 if form == "header-only" else 120
    body = insights_csv(rows, form)
    if form == "gzip":
        body = gzip.compress(body)
    elif form == "bom-crlf":
        body = codecs.BOM_UTF8 + body.replace(b"\n", b"\r\n")
    job_id = ses.add(INSIGHTS, body, exported=rows or None)
    assert load(postgres_db, job_id) == rows
    assert ses.downloads == [job_id]  # as it is: no second read by the record reader
    assert insights_ids(postgres_db) == sorted(f"{form}-m{i}" for i in range(rows))
    assert {row[0] for row in postgres_db.rows("t", "subject")} <= {f"subject {form} {i}" for i in range(rows)}


def test_the_staging_table_gets_its_buffers_unless_the_session_has_used_a_temporary_table(postgres_db: SqlDb) -> None:
    """A fresh session takes ``STAGING_BUFFERS`` for the transaction; one past a temporary table loads on, unchanged."""
    from airflow_provider_sesexport.transfers._sql_load import STAGING_BUFFERS, _staging_buffers

    with closing(postgres_db.hook().get_conn()) as conn, closing(conn.cursor()) as cur:
        cur.execute("SHOW temp_buffers")
        default = cur.fetchone()[0]
        assert default != STAGING_BUFFERS
        _staging_buffers(cur)
        cur.execute("SHOW temp_buffers")
        assert cur.fetchone()[0] == STAGING_BUFFERS
        conn.rollback()  # SET LOCAL: the session's own value again
        cur.execute("SHOW temp_buffers")
        assert cur.fetchone()[0] == default

        cur.execute("CREATE TEMPORARY TABLE used (x int)")
        cur.execute("INSERT INTO used VALUES (1)")
        _staging_buffers(cur)  # refused by the server, and the transaction goes on
        cur.execute("SELECT x FROM used")
        assert cur.fetchone()[0] == 1
        cur.execute("SHOW temp_buffers")
        assert cur.fetchone()[0] == default
