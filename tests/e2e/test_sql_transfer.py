"""
SesExportToSqlOperator in a real Airflow (dag.test()) against the emulator, into real SQLite and PostgreSQL.

Rows read back are compared with the emulator's file parsed here with the csv / json modules (not with
the package's reader), so a wrong conversion in the loader cannot hide behind the same one in the check.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_sesexport.transfers._sql_load import ExportLoad
from airflow_provider_sesexport.transfers._sql_tables import (
    MESSAGE_INSIGHTS_TABLE,
    METRICS_TABLE,
    NulScrubber,
    TableLayout,
)
from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator
from tests.airflow_names import DAG
from tests.conftest import task_states
from tests.e2e.conftest import xcom
from tests.sql_fixtures import SqlDb

pytestmark = pytest.mark.e2e

START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
INSIGHTS_SOURCE = {
    # 2 hours of the emulated account's mail (1,200 messages), sampled down to 300 messages (~340 rows)
    "MessageInsightsDataSource": {"StartDate": START, "EndDate": START + dt.timedelta(hours=2), "MaxResults": 300}
}
METRICS_SOURCE = {
    "MetricsDataSource": {
        "Dimensions": {"ISP": ["Gmail", "Yahoo"], "EMAIL_IDENTITY": ["example.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
        "StartDate": START,
        "EndDate": START + dt.timedelta(days=1),
    }
}
_SES_TIME = "%Y-%m-%d %H:%M:%S.%f UTC"


def completed_job(emu: Any, source: dict[str, Any], data_format: str = "CSV") -> str:
    client = emu.client()
    job_id = client.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": data_format})["JobId"]
    emu.complete_job(job_id)
    return job_id


def export_file(emu: Any, job_id: str) -> bytes:
    url = emu.client().get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def expected_insights(body: bytes, job_id: str) -> Counter[tuple[Any, ...]]:
    """The Message Insights table's rows, from the file (CSV: quoted, trailing comma; JSON: an array)."""
    text = body.decode()
    if text.lstrip().startswith("["):
        records = [{k: v for k, v in obj.items() if v != ""} for obj in json.loads(text)]
    else:
        lines = list(csv.reader(io.StringIO(text)))
        header = lines[0][:-1]
        records = [dict(zip(header, line[:-1], strict=True)) for line in lines[1:] if line]
    rows: Counter[tuple[Any, ...]] = Counter()
    for record in records:
        row = []
        for name in MESSAGE_INSIGHTS_TABLE.row_names[:-1]:
            value = record.get(name) or None
            if value is not None and name.endswith("timestamp"):
                value = dt.datetime.strptime(value, _SES_TIME).replace(tzinfo=dt.timezone.utc)
            row.append(value)
        rows[(*row, job_id)] += 1
    return rows


def expected_metrics(body: bytes, job_id: str, start: dt.datetime, end: dt.datetime) -> Counter[tuple[Any, ...]]:
    """The tidy metrics rows, from the file (CSV: dimension columns then METRIC_AGG columns; JSON: one line)."""
    text = body.decode()
    pairs: list[tuple[dict[str, str], dict[str, float]]] = []
    if text.lstrip().startswith("["):
        for obj in json.loads(text):
            dims = {k.upper(): v for k, v in obj.items() if k != "metrics"}
            pairs.append((dims, {k: float(v) for k, v in obj["metrics"].items()}))
    else:
        for record in csv.DictReader(io.StringIO(text)):
            metric_cols = {k for k in record if re.fullmatch(r"[A-Z_]+_(VOLUME|RATE)", k)}
            pairs.append(
                ({k: v for k, v in record.items() if k not in metric_cols}, {k: float(record[k]) for k in metric_cols})
            )
    rows: Counter[tuple[Any, ...]] = Counter()
    for dims, metrics in pairs:
        for name, value in metrics.items():
            metric, aggregation = name.rsplit("_", 1)
            key = tuple(dims.get(d) for d in ("EMAIL_IDENTITY", "CONFIGURATION_SET", "ISP", "TENANT_NAME"))
            rows[(*key, metric, aggregation, value, start, end, job_id)] += 1
    return rows


def table_rows(db: SqlDb, table: str, layout: TableLayout) -> Counter[tuple[Any, ...]]:
    """The table's rows with timestamps as aware UTC datetimes (SQLite stores them as ISO-8601 text)."""
    kinds = [kind for _, kind, _ in layout.columns][:-1]  # data_source: checked apart
    out: Counter[tuple[Any, ...]] = Counter()
    for row in db.rows(table, ", ".join(layout.row_names)):
        values = []
        for kind, value in zip(kinds, row, strict=True):
            if kind == "timestamp" and value is not None:
                value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
                value = value.astimezone(dt.timezone.utc)
            values.append(value)
        out[tuple(values)] += 1
    return out


def run_load(run_dag: Callable[..., Any], dag_id: str, **kwargs: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False) as dag:
        SesExportToSqlOperator(task_id="load", **kwargs)
    return run_dag(dag)


def succeeded(dr: Any) -> bool:
    return str(getattr(dr.state, "value", dr.state)) == "success"


@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_message_insights_export_loads_every_row_once_and_reruns_leave_one_copy(
    run_dag: Callable[..., Any], ses_export_emulator: Any, sql_db: SqlDb, task_logs: Callable[[], str]
) -> None:
    emu = ses_export_emulator
    job_id = completed_job(emu, INSIGHTS_SOURCE)
    expected = expected_insights(export_file(emu, job_id), job_id)
    assert len(expected) > 300 and max(expected.values()) == 1  # several batches of 100; every row distinct
    kwargs = {"table": "ses_insights", "sql_conn_id": sql_db.conn_id, "create_table": True, "commit_every": 100}

    dr = run_load(run_dag, "sql_insights", job_id=job_id, **kwargs)

    assert succeeded(dr), task_states(dr)
    assert table_rows(sql_db, "ses_insights", MESSAGE_INSIGHTS_TABLE) == expected
    total = sum(expected.values())
    assert xcom(dr, "load", "rows") == total == xcom(dr, "load")
    assert xcom(dr, "load", "table") == "ses_insights"
    assert xcom(dr, "load", "job_id") == job_id
    logs = task_logs()
    staging = "COPY into a temporary table" if sql_db.kind == "postgresql" else "INSERT into a temporary table"
    assert f"{staging}, then DELETE + INSERT ... SELECT in one transaction" in logs
    assert f'into "ses_insights": {total} rows, one transaction' in logs
    (source,) = {row[0] for row in sql_db.rows("ses_insights", "data_source")}
    assert source.startswith("MESSAGE_INSIGHTS:")

    # the same job loaded again: one copy of each row (the emulator gives a new job of the same source new
    # message ids, so re-runs of one data source are checked with metrics, below)
    assert succeeded(run_load(run_dag, "sql_insights", job_id=job_id, **kwargs))
    assert table_rows(sql_db, "ses_insights", MESSAGE_INSIGHTS_TABLE) == expected


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_metrics_export_loads_tidy_rows_and_a_rerun_replaces_them(
    run_dag: Callable[..., Any], ses_export_emulator: Any, sql_db: SqlDb, data_format: str
) -> None:
    emu = ses_export_emulator
    source = METRICS_SOURCE["MetricsDataSource"]
    job_id = completed_job(emu, METRICS_SOURCE, data_format)
    expected = expected_metrics(export_file(emu, job_id), job_id, source["StartDate"], source["EndDate"])
    assert sum(expected.values()) == 4  # 2 ISPs x 1 identity x 2 metrics; configuration_set, tenant_name null
    kwargs = {"table": "vdm_metrics", "sql_conn_id": sql_db.conn_id, "create_table": True}

    dr = run_load(run_dag, "sql_metrics", job_id=job_id, **kwargs)

    assert succeeded(dr), task_states(dr)
    assert table_rows(sql_db, "vdm_metrics", METRICS_TABLE) == expected
    assert xcom(dr, "load", "rows") == 4
    # a re-run of the same export (a new job): null key columns still match, so the rows are replaced
    rerun_id = completed_job(emu, METRICS_SOURCE, data_format)
    rerun = expected_metrics(export_file(emu, rerun_id), rerun_id, source["StartDate"], source["EndDate"])
    assert succeeded(run_load(run_dag, "sql_metrics", job_id=rerun_id, **kwargs))
    assert table_rows(sql_db, "vdm_metrics", METRICS_TABLE) == rerun


@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_postgres_schema_qualified_table(
    run_dag: Callable[..., Any], ses_export_emulator: Any, postgres_db: SqlDb
) -> None:
    job_id = completed_job(ses_export_emulator, METRICS_SOURCE)
    postgres_db.run("CREATE SCHEMA ses")
    dr = run_load(
        run_dag,
        "sql_schema",
        job_id=job_id,
        table="m",
        schema="ses",
        sql_conn_id=postgres_db.conn_id,
        create_table=True,
    )
    assert succeeded(dr), task_states(dr)
    assert xcom(dr, "load", "table") == "ses.m"
    assert len(postgres_db.rows("ses.m")) == 4


@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_bad_input_fails_with_the_cause_before_any_row(
    run_dag: Callable[..., Any],
    ses_export_emulator: Any,
    sqlite_db: SqlDb,
    monkeypatch: pytest.MonkeyPatch,
    task_logs: Callable[[], str],
) -> None:
    emu = ses_export_emulator
    job_id = completed_job(emu, INSIGHTS_SOURCE)

    # a table that does not exist, without create_table
    dr = run_load(run_dag, "sql_bad_table", job_id=job_id, table="missing", sql_conn_id=sqlite_db.conn_id)
    assert task_states(dr)["load"] == "failed"
    logs = task_logs()
    assert "Invalid table='missing'" in logs and "create_table=True" in logs

    # a connection whose hook cannot insert rows (an AWS connection)
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", json.dumps({"conn_type": "aws"}))
    dr = run_load(run_dag, "sql_bad_conn", job_id=job_id, table="t", sql_conn_id="not_sql", create_table=True)
    assert task_states(dr)["load"] == "failed"
    assert "Invalid sql_conn_id='not_sql'" in task_logs()

    # a job that has not finished
    emu.add_rule(action="hang")
    running = emu.client().create_export_job(ExportDataSource=INSIGHTS_SOURCE, ExportDestination={"DataFormat": "CSV"})[
        "JobId"
    ]
    dr = run_load(run_dag, "sql_running", job_id=running, table="t", sql_conn_id=sqlite_db.conn_id, create_table=True)
    assert task_states(dr)["load"] == "failed"
    assert f"SES export job '{running}' has not finished" in task_logs()

    # none of them created a table or wrote a row
    assert sqlite_db.rows("sqlite_master", "name") == []


_PG_REFUSE = """
CREATE FUNCTION refuse_one() RETURNS trigger AS $$
BEGIN
    IF NEW.messageid = '{messageid}' THEN RAISE EXCEPTION 'refused {messageid}'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_one BEFORE INSERT ON ses_insights FOR EACH ROW EXECUTE FUNCTION refuse_one();
"""
_SQLITE_REFUSE = """
CREATE TRIGGER refuse_one BEFORE INSERT ON ses_insights WHEN NEW.messageid = '{messageid}'
BEGIN SELECT RAISE(ABORT, 'refused'); END
"""


@pytest.mark.ses_export_emulator(time_scale=0.01)
def test_a_row_refused_mid_load_leaves_the_table_as_it_was_and_a_rerun_completes(
    run_dag: Callable[..., Any], ses_export_emulator: Any, sql_db: SqlDb, task_logs: Callable[[], str]
) -> None:
    """The database refuses the 251st row: nothing of the load is visible (the earlier load's rows stay)."""
    emu = ses_export_emulator
    earlier = completed_job(emu, METRICS_SOURCE)  # another data source in its own table: untouched throughout
    for statement in MESSAGE_INSIGHTS_TABLE.create_statements(sql_db.kind, "ses_insights", None):
        sql_db.run(statement)  # the guide's CREATE TABLE (docs/howto/export_to_sql.md), created by hand
    assert succeeded(run_load(run_dag, "sql_mid_other", job_id=earlier, table="m", sql_conn_id=sql_db.conn_id,
                              create_table=True))  # fmt: skip
    job_id = completed_job(emu, INSIGHTS_SOURCE)
    body = export_file(emu, job_id)
    expected = expected_insights(body, job_id)
    refused = list(csv.reader(io.StringIO(body.decode())))[251][0]
    sql_db.run((_PG_REFUSE if sql_db.kind == "postgresql" else _SQLITE_REFUSE).format(messageid=refused))
    kwargs = {"job_id": job_id, "table": "ses_insights", "sql_conn_id": sql_db.conn_id, "commit_every": 100}

    dr = run_load(run_dag, "sql_mid_load", **kwargs)

    assert task_states(dr)["load"] == "failed"
    assert "Nothing was committed: the table is as it was before the load" in task_logs()
    assert table_rows(sql_db, "ses_insights", MESSAGE_INSIGHTS_TABLE) == Counter()
    assert len(sql_db.rows("m")) == 4

    sql_db.run("DROP TRIGGER refuse_one" + (" ON ses_insights" if sql_db.kind == "postgresql" else ""))
    assert succeeded(run_load(run_dag, "sql_mid_load", **kwargs))
    assert table_rows(sql_db, "ses_insights", MESSAGE_INSIGHTS_TABLE) == expected
    assert len(sql_db.rows("m")) == 4


def test_the_path_for_other_databases_replaces_in_one_transaction(sql_db: SqlDb) -> None:
    """The generic path (DELETE + INSERT through the DbApiHook's connection), on both real databases."""
    for statement in METRICS_TABLE.create_statements(sql_db.kind, "m", None):
        sql_db.run(statement)
    day = (START, START + dt.timedelta(days=1))

    def rows(value: float, job: str) -> list[tuple[Any, ...]]:
        return [
            (None, None, "Gmail", None, "SEND", "VOLUME", value, *day, job),
            ("example.com", None, None, None, "SEND", "VOLUME", value + 1, *day, job),
        ]

    def load(source: str, batch: list[tuple[Any, ...]], check: Callable[[int], None] = lambda n: None) -> int:
        export = ExportLoad(sql_db.hook(), None, "m", METRICS_TABLE, source, batch[0][-1], replace=True, batch_size=1,
                            scrubber=NulScrubber("j"))  # fmt: skip
        return export.run(iter(batch), check)

    assert load("A", rows(1.0, "job-1")) == 2
    assert load("B", rows(3.0, "job-3")) == 2
    assert load("A", rows(5.0, "job-2")) == 2

    def refuse(n: int) -> None:
        raise RuntimeError("refused before the commit")

    with pytest.raises(RuntimeError, match="refused before the commit"):
        load("A", rows(7.0, "job-4"), refuse)
    assert table_rows(sql_db, "m", METRICS_TABLE) == Counter(rows(5.0, "job-2") + rows(3.0, "job-3"))
