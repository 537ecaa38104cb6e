"""SesExportToSqlOperator units: bad input, the write path per database, rows of each layout, table definitions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_sesexport.exceptions import SesExportInputError, SesExportRecordsError
from airflow_provider_sesexport.transfers._sql_tables import (
    MESSAGE_INSIGHTS_TABLE,
    METRICS_TABLE,
    insights_rows,
    metrics_rows,
)
from airflow_provider_sesexport.transfers._sql_writer import DELETE_THEN_INSERT, INSERT, UPSERT, choose_path
from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator

DAY = (dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc))
REQUIRED = {"task_id": "load", "job_id": "job-1", "table": "t", "sql_conn_id": "db"}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("table", "ses.metrics"),
        ("table", "drop table x;--"),
        ("table", ""),
        ("table", None),
        ("table", "1abc"),
        ("schema", "my schema"),
        ("sql_conn_id", ""),
        ("sql_conn_id", None),
        ("commit_every", 0),
        ("commit_every", 10.5),
        ("commit_every", True),
        ("replace", "yes"),
        ("create_table", 1),
    ],
)
def test_bad_parameters_are_refused_when_the_dag_is_parsed(param: str, value: Any) -> None:
    with pytest.raises(SesExportInputError, match=f"Invalid {param}="):
        SesExportToSqlOperator(**{**REQUIRED, param: value})


def test_a_dotted_table_is_told_to_use_schema() -> None:
    with pytest.raises(SesExportInputError, match="Give the schema in `schema`"):
        SesExportToSqlOperator(**{**REQUIRED, "table": "ses.metrics"})


class _OwnUpsertHook(DbApiHook):
    """As PostgresHook before common.sql dialects: it builds its own replace statement."""

    conn_name_attr = "own_conn_id"

    def _generate_insert_sql(self, table: Any, values: Any, target_fields: Any, replace: Any, **kwargs: Any) -> str:
        return "INSERT ... ON CONFLICT"


class _GenericHook(DbApiHook):
    """A hook whose insert_rows(replace=True) uses the generic statement format it is given."""

    conn_name_attr = "generic_conn_id"
    dialect_name = "generic"  # no registered common.sql dialect: the generic one


@pytest.mark.parametrize(
    ("hook", "database", "path"),
    [
        (_OwnUpsertHook(), "postgresql", UPSERT),
        (_OwnUpsertHook(), None, DELETE_THEN_INSERT),  # an upsert we do not know the statement of
        (_GenericHook(replace_statement_format="REPLACE INTO {} {} VALUES ({})"), "sqlite", UPSERT),
        (_GenericHook(replace_statement_format="INSERT OR REPLACE INTO {} {} VALUES ({})"), "sqlite", UPSERT),
        (_GenericHook(replace_statement_format="UPSERT INTO {} {} VALUES ({})"), "sqlite", DELETE_THEN_INSERT),
        (_GenericHook(replace_statement_format="REPLACE INTO {} {} VALUES ({})"), "postgresql", DELETE_THEN_INSERT),
        (_GenericHook(replace_statement_format="REPLACE INTO {} {} VALUES ({})"), None, DELETE_THEN_INSERT),
    ],
)
def test_the_write_path_follows_the_database_and_what_the_hook_can_do(hook: Any, database: Any, path: str) -> None:
    assert choose_path(hook, database, replace=True)[0] == path
    assert choose_path(hook, database, replace=False)[0] == INSERT


def test_message_insights_rows_fill_missing_columns_and_drop_unknown_ones(caplog: pytest.LogCaptureFixture) -> None:
    sent = dt.datetime(2026, 11, 1, 0, 0, 5, tzinfo=dt.timezone.utc)
    records = [
        {"messageid": "m1", "sendtimestamp": sent, "destination": "a@example.com"},  # JSON: empty members left out
        {"MESSAGEID": "m2", "destination": "b@example.com", "new_column": "x"},
    ]
    with caplog.at_level(logging.WARNING):
        rows = list(insights_rows(records, "job-1"))
    assert len(rows[0]) == len(MESSAGE_INSIGHTS_TABLE.names)
    assert dict(zip(MESSAGE_INSIGHTS_TABLE.names, rows[0], strict=True)) == {
        **dict.fromkeys(MESSAGE_INSIGHTS_TABLE.names),
        "messageid": "m1",
        "sendtimestamp": sent,
        "destination": "a@example.com",
        "job_id": "job-1",
    }
    assert rows[1][0] == "m2" and rows[1][4] == "b@example.com"
    assert "new_column" in caplog.text


def test_metrics_rows_are_tidy_for_both_layouts() -> None:
    csv_record = {"ISP": "Gmail", "IDENTITY": "example.com", "SEND_VOLUME": 10.0, "DELIVERY_OPEN_RATE": 0.5}
    json_record = {"configuration_set": "default", "metrics": {"SEND_VOLUME": 3.0}}
    rows = list(metrics_rows([csv_record, json_record], "job-1", *DAY))
    assert rows == [
        ("example.com", None, "Gmail", None, "SEND", "VOLUME", 10.0, *DAY, "job-1"),
        ("example.com", None, "Gmail", None, "DELIVERY_OPEN", "RATE", 0.5, *DAY, "job-1"),
        (None, "default", None, None, "SEND", "VOLUME", 3.0, *DAY, "job-1"),
    ]
    assert all(len(row) == len(METRICS_TABLE.names) for row in rows)


def test_a_metrics_column_the_table_has_no_place_for_is_an_error() -> None:
    with pytest.raises(SesExportRecordsError, match="'REGION'"):
        list(metrics_rows([{"REGION": "eu", "SEND_VOLUME": 1.0}], "job-1", *DAY))


def test_table_definitions_treat_null_key_columns_as_equal() -> None:
    (pg,) = METRICS_TABLE.create_statements("postgresql", "m", "ses")
    assert pg.startswith("CREATE TABLE IF NOT EXISTS ses.m (") and "UNIQUE NULLS NOT DISTINCT (export_start" in pg
    assert "value DOUBLE PRECISION" in pg and "export_start TIMESTAMPTZ NOT NULL" in pg
    table, index = METRICS_TABLE.create_statements("sqlite", "m", None)
    assert "UNIQUE" not in table
    assert index.startswith("CREATE UNIQUE INDEX IF NOT EXISTS m_natural_key ON m (export_start, export_end, IFNULL(")
    for database in ("postgresql", "sqlite"):
        (insights,) = MESSAGE_INSIGHTS_TABLE.create_statements(database, "mi", None)
        assert "PRIMARY KEY (messageid, destination)" in insights


class _RecordingSqlHook(DbApiHook):
    conn_name_attr = "recording_conn_id"
    dialect_name = "sqlite"

    def __init__(self) -> None:
        super().__init__(replace_statement_format="REPLACE INTO {} {} VALUES ({})")
        self.calls: list[str] = []

    def insert_rows(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("insert_rows")

    def get_conn(self) -> Any:
        self.calls.append("get_conn")
        raise AssertionError("no connection may be opened for rows")

    def get_records(self, sql: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return []

    def run(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(f"run {sql.split('(')[0].strip()}")


def _run_with(
    job: dict[str, Any], records: Iterator[dict[str, Any]], sql_hook: Any = None, **kwargs: Any
) -> _RecordingSqlHook:
    sql_hook = sql_hook or _RecordingSqlHook()
    connection = mock.Mock(conn_type="sqlite", get_hook=mock.Mock(return_value=sql_hook))
    op = SesExportToSqlOperator(**{**REQUIRED, **kwargs})
    ses = mock.Mock(get_export_job=mock.Mock(return_value=job), iter_export_records=mock.Mock(return_value=records))
    with (
        mock.patch("airflow_provider_sesexport._compat.get_connection", return_value=connection),
        mock.patch.object(SesExportToSqlOperator, "hook", ses),
    ):
        try:
            op.execute({"ti": mock.Mock()})  # type: ignore[arg-type]
        finally:
            ses.get_export_job.assert_called_once_with("job-1")
    return sql_hook


COMPLETED = {"JobId": "job-1", "JobStatus": "COMPLETED", "ExportDestination": {"DataFormat": "CSV"}}


def test_an_unrecognised_layout_fails_before_any_row() -> None:
    def records() -> Iterator[dict[str, Any]]:
        raise SesExportRecordsError("The export file's CSV header is neither Message Insights nor metrics")
        yield {}

    sql_hook = _RecordingSqlHook()
    with pytest.raises(SesExportRecordsError, match="neither Message Insights nor metrics"):
        _run_with({**COMPLETED, "ExportSourceType": "MESSAGE_INSIGHTS"}, records(), sql_hook, create_table=True)
    assert "insert_rows" not in sql_hook.calls and "get_conn" not in sql_hook.calls
    assert sql_hook.calls == ["run CREATE TABLE IF NOT EXISTS t"]  # the table, created before reading; no row


def test_an_unknown_source_type_fails_before_anything_is_written() -> None:
    with pytest.raises(SesExportRecordsError, match="ExportSourceType 'DELIVERABILITY'"):
        _run_with({**COMPLETED, "ExportSourceType": "DELIVERABILITY"}, iter([]), create_table=True)


def test_a_metrics_job_without_dates_cannot_fill_export_start() -> None:
    job = {**COMPLETED, "ExportSourceType": "METRICS_DATA", "ExportDataSource": {"MetricsDataSource": {}}}
    with pytest.raises(SesExportRecordsError, match="export_start and export_end"):
        _run_with(job, iter([]))


def test_create_table_on_another_database_names_the_parameter() -> None:
    connection = mock.Mock(conn_type="mysql", get_hook=mock.Mock(return_value=_RecordingSqlHook()))
    ses = mock.Mock(get_export_job=mock.Mock(return_value={**COMPLETED, "ExportSourceType": "MESSAGE_INSIGHTS"}))
    op = SesExportToSqlOperator(**REQUIRED, create_table=True)
    with (
        mock.patch("airflow_provider_sesexport._compat.get_connection", return_value=connection),
        mock.patch.object(SesExportToSqlOperator, "hook", ses),
        pytest.raises(SesExportInputError, match="Invalid create_table=True: expected False for this connection"),
    ):
        op.execute({"ti": mock.Mock()})  # type: ignore[arg-type]


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_the_readme_shows_the_tables_create_table_makes(database: str) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split(f"<!-- sql-tables:{database} -->\n```sql\n", 1)[1].split("```", 1)[0]
    shown = [s.strip() for s in re.sub(r"^--.*$", "", block, flags=re.MULTILINE).split(";") if s.strip()]
    made = [
        *MESSAGE_INSIGHTS_TABLE.create_statements(database, "ses_message_insights", None),
        *METRICS_TABLE.create_statements(database, "ses_vdm_metrics", None),
    ]
    assert shown == made
