"""SesExportToSqlOperator units: bad input, identifiers, data source keys, rows of each layout, table definitions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_sesexport.exceptions import SesExportInputError, SesExportRecordsError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.transfers._sql_tables import (
    MESSAGE_INSIGHTS_TABLE,
    METRICS_TABLE,
    TABLES,
    data_source_key,
    insights_rows,
    metrics_rows,
    qualified_name,
)
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


def test_names_are_quoted_by_the_database_rules() -> None:
    assert qualified_name("order", None, "sqlite") == '"order"'
    assert qualified_name("Order", "Select", "postgresql") == '"select"."order"'  # as PostgreSQL folds unquoted
    assert qualified_name("order", "s", None) == "s.order"
    assert qualified_name("order", "s", None, escape=lambda name: f"`{name}`") == "`s`.`order`"


def _job(source_type: str, source: dict[str, Any]) -> dict[str, Any]:
    key = "MessageInsightsDataSource" if source_type == "MESSAGE_INSIGHTS" else "MetricsDataSource"
    return {"ExportSourceType": source_type, "ExportDataSource": {key: source}}


def test_the_data_source_key_ignores_list_order_and_tells_sources_apart() -> None:
    metrics = {
        "Dimensions": {"ISP": ["Gmail", "Yahoo"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
        "StartDate": DAY[0],
        "EndDate": DAY[1],
    }
    key = data_source_key(_job("METRICS_DATA", metrics))
    assert key.startswith("METRICS_DATA:") and len(key) == len("METRICS_DATA:") + 64
    reordered = {**metrics, "Dimensions": {"ISP": ["Yahoo", "Gmail"]}, "Metrics": metrics["Metrics"][::-1]}
    assert data_source_key(_job("METRICS_DATA", reordered)) == key
    naive = {**metrics, "StartDate": DAY[0].replace(tzinfo=None), "EndDate": DAY[1].replace(tzinfo=None)}
    assert data_source_key(_job("METRICS_DATA", naive)) == key  # boto3 may give either
    for changed in (
        {**metrics, "StartDate": DAY[0] - dt.timedelta(days=1)},
        {**metrics, "Dimensions": {"ISP": ["Gmail"]}},
        {**metrics, "Metrics": metrics["Metrics"][:1]},
    ):
        assert data_source_key(_job("METRICS_DATA", changed)) != key
    insights = {"StartDate": DAY[0], "EndDate": DAY[1]}
    assert data_source_key(_job("MESSAGE_INSIGHTS", insights)) != data_source_key(
        _job("MESSAGE_INSIGHTS", {**insights, "MaxResults": 10})
    )


def test_the_data_source_key_of_a_job_loaded_by_0_1_0_is_unchanged() -> None:
    # The keys 0.1.0 stored for these two GetExportJob answers (its data_source_key, run on them): a table loaded
    # then must be replaced by the same key now, or every re-export after an upgrade leaves stale rows
    metrics = {
        "Dimensions": {"ISP": ["Gmail", "Yahoo"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": DAY[0],
        "EndDate": DAY[1],
    }
    insights = {"StartDate": DAY[0], "EndDate": DAY[1], "Include": {"Isp": ["Gmail"]}, "MaxResults": 100}
    assert data_source_key(_job("METRICS_DATA", metrics)) == (
        "METRICS_DATA:23c3740fd96128c79bf641e553aa413a3c459bf184f51f6f3bd94bbdd9da5c93"
    )
    assert data_source_key(_job("MESSAGE_INSIGHTS", insights)) == (
        "MESSAGE_INSIGHTS:f09bfb2ec09c53625f5e57bd5ec6bf5f62586070974b89d94a5c68502583e6f8"
    )


def test_message_insights_rows_fill_missing_columns_and_drop_unknown_ones(caplog: pytest.LogCaptureFixture) -> None:
    sent = dt.datetime(2026, 11, 1, 0, 0, 5, tzinfo=dt.timezone.utc)
    records = [
        {"messageid": "m1", "sendtimestamp": sent, "destination": "a@example.com"},  # JSON: empty members left out
        {"MESSAGEID": "m2", "destination": "b@example.com", "new_column": "x"},
    ]
    with caplog.at_level(logging.WARNING):
        rows = list(insights_rows(records, "job-1"))
    assert len(rows[0]) == len(MESSAGE_INSIGHTS_TABLE.row_names)
    assert dict(zip(MESSAGE_INSIGHTS_TABLE.row_names, rows[0], strict=True)) == {
        **dict.fromkeys(MESSAGE_INSIGHTS_TABLE.row_names),
        "messageid": "m1",
        "sendtimestamp": sent,
        "destination": "a@example.com",
        "job_id": "job-1",
    }
    assert rows[1][0] == "m2" and rows[1][4] == "b@example.com"
    assert "new_column" in caplog.text
    # records after the warning keep their keys' case too: every one is read the same way, one warning only
    more = [{"MESSAGEID": f"m{i}", "DESTINATION": f"{i}@example.com", "NEW_COLUMN": "x"} for i in range(3, 6)]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        later = list(insights_rows(more, "job-1"))
    assert [(row[0], row[4]) for row in later] == [(f"m{i}", f"{i}@example.com") for i in range(3, 6)]
    assert caplog.text.count("new_column") == 1


def test_metrics_rows_are_tidy_for_both_layouts() -> None:
    csv_record = {"ISP": "Gmail", "IDENTITY": "example.com", "SEND_VOLUME": 10.0, "DELIVERY_OPEN_RATE": 0.5}
    json_record = {"configuration_set": "default", "metrics": {"SEND_VOLUME": 3.0}}
    rows = list(metrics_rows([csv_record, json_record], "job-1", *DAY))
    assert rows == [
        ("example.com", None, "Gmail", None, "SEND", "VOLUME", 10.0, *DAY, "job-1"),
        ("example.com", None, "Gmail", None, "DELIVERY_OPEN", "RATE", 0.5, *DAY, "job-1"),
        (None, "default", None, None, "SEND", "VOLUME", 3.0, *DAY, "job-1"),
    ]
    assert all(len(row) == len(METRICS_TABLE.row_names) for row in rows)


def test_a_metrics_column_the_table_has_no_place_for_is_left_out_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [{"REGION": "eu", "ISP": "Gmail", "SEND_VOLUME": float(i)} for i in range(3)]
    with caplog.at_level(logging.WARNING):
        rows = list(metrics_rows(records, "job-1", *DAY))
    assert rows == [(None, None, "Gmail", None, "SEND", "VOLUME", float(i), *DAY, "job-1") for i in range(3)]
    assert caplog.text.count("'REGION'") == 1


def test_table_definitions_need_no_key_and_index_both_replace_keys() -> None:
    pg, *pg_indexes = METRICS_TABLE.create_statements("postgresql", "order", "ses")
    assert pg.startswith('CREATE TABLE IF NOT EXISTS "ses"."order" (') and "UNIQUE" not in pg and "KEY" not in pg
    assert "value DOUBLE PRECISION" in pg and 'data_source TEXT COLLATE "C" NOT NULL' in pg
    assert 'job_id TEXT COLLATE "C" NOT NULL' in pg
    assert pg_indexes == [
        'CREATE INDEX IF NOT EXISTS "order_data_source" ON "ses"."order" (data_source)',
        'CREATE INDEX IF NOT EXISTS "order_job_id" ON "ses"."order" (job_id)',
    ]
    table, *indexes = MESSAGE_INSIGHTS_TABLE.create_statements("sqlite", "m", "aux")
    assert table.startswith('CREATE TABLE IF NOT EXISTS "aux"."m" (') and "KEY" not in table
    assert "COLLATE" not in table and "data_source TEXT NOT NULL" in table
    assert indexes == [
        'CREATE INDEX IF NOT EXISTS "aux"."m_data_source" ON "m" (data_source)',
        'CREATE INDEX IF NOT EXISTS "aux"."m_job_id" ON "m" (job_id)',
    ]


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
        self.conn = mock.MagicMock()
        # the catalog: the table has every column either layout needs
        self.conn.cursor.return_value.fetchall.return_value = [
            (name,) for layout in TABLES.values() for name in layout.names
        ]
        return self.conn

    def get_records(self, sql: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return []

    def run(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        words = sql.split("(")[0].split()
        self.calls.append("run " + " ".join(word for word in words if not word.startswith('"')))


def _ses_hook(job: dict[str, Any], **methods: Any) -> mock.Mock:
    """A stand-in SES hook answering GetExportJob with ``job``, read by the hook's own completed-job rule."""
    ses = mock.Mock(get_export_job=mock.Mock(return_value=job), **methods)
    ses.get_completed_export_job = partial(SesExportJobHook.get_completed_export_job, ses)
    return ses


def _run_with(
    job: dict[str, Any], records: Iterator[dict[str, Any]], sql_hook: Any = None, **kwargs: Any
) -> _RecordingSqlHook:
    sql_hook = sql_hook or _RecordingSqlHook()
    connection = mock.Mock(conn_type="sqlite", get_hook=mock.Mock(return_value=sql_hook))
    op = SesExportToSqlOperator(**{**REQUIRED, **kwargs})
    ses = _ses_hook(job, iter_export_records=mock.Mock(return_value=records))
    with (
        mock.patch("airflow_provider_sesexport.transfers.ses_export_to_sql.get_connection", return_value=connection),
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
    # the table check (the catalog), then the load
    assert sql_hook.calls == [
        "run CREATE TABLE IF NOT EXISTS",
        "run CREATE INDEX IF NOT EXISTS ON",
        "run CREATE INDEX IF NOT EXISTS ON",
        "get_conn",
        "get_conn",
    ]
    statements = [c.args[0] for c in sql_hook.conn.cursor.return_value.execute.call_args_list]
    assert not any(s.startswith(("INSERT", "DELETE", "BEGIN IMMEDIATE", "COMMIT")) for s in statements), statements
    sql_hook.conn.rollback.assert_called_once_with()


def test_an_unknown_source_type_fails_before_anything_is_written() -> None:
    with pytest.raises(SesExportRecordsError, match="ExportSourceType 'DELIVERABILITY'"):
        _run_with({**COMPLETED, "ExportSourceType": "DELIVERABILITY"}, iter([]), create_table=True)


def test_a_metrics_job_without_dates_cannot_fill_export_start() -> None:
    job = {**COMPLETED, "ExportSourceType": "METRICS_DATA", "ExportDataSource": {"MetricsDataSource": {}}}
    with pytest.raises(SesExportRecordsError, match="export_start and export_end"):
        _run_with(job, iter([]))


def test_create_table_on_another_database_names_the_parameter() -> None:
    connection = mock.Mock(conn_type="mysql", get_hook=mock.Mock(return_value=_RecordingSqlHook()))
    ses = _ses_hook({**COMPLETED, "ExportSourceType": "MESSAGE_INSIGHTS"})
    op = SesExportToSqlOperator(**REQUIRED, create_table=True)
    with (
        mock.patch("airflow_provider_sesexport.transfers.ses_export_to_sql.get_connection", return_value=connection),
        mock.patch.object(SesExportToSqlOperator, "hook", ses),
        pytest.raises(SesExportInputError, match="Invalid create_table=True: expected False for this connection"),
    ):
        op.execute({"ti": mock.Mock()})  # type: ignore[arg-type]


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_the_docs_show_the_tables_create_table_makes(database: str) -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "howto" / "export_to_sql.md").read_text()
    block = page.split(f"<!-- sql-tables:{database} -->\n```sql\n", 1)[1].split("```", 1)[0]
    shown = [s.strip() for s in re.sub(r"^--.*$", "", block, flags=re.MULTILINE).split(";") if s.strip()]
    made = [
        *MESSAGE_INSIGHTS_TABLE.create_statements(database, "ses_message_insights", None),
        *METRICS_TABLE.create_statements(database, "ses_vdm_metrics", None),
    ]
    assert shown == made


def test_the_sql_identifier_and_hook_rules_live_in_the_sql_transfer() -> None:
    from airflow_provider_sesexport.transfers import _sql_tables
    from airflow_provider_sesexport.utils import validation

    with pytest.raises(SesExportInputError, match=r"Invalid table='a\.b'.*Give the schema in `schema`"):
        _sql_tables.validate_sql_identifier("a.b", "table")
    with pytest.raises(SesExportInputError, match=r"Invalid schema='1x': expected a plain SQL identifier"):
        _sql_tables.validate_sql_identifier("1x", "schema")
    assert _sql_tables.validate_sql_identifier("order", "table") == "order"
    with pytest.raises(SesExportInputError, match=r"Invalid sql_conn_id='c'.*has no"):
        _sql_tables.validate_sql_hook(object(), "c", "http")
    assert [name for name in vars(validation) if "sql" in name.lower()] == []
