"""The VDM daily example DAG in a real Airflow: mapped exports, deferrable waits, results pushed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from tests.airflow_names import AIRFLOW_V_3
from tests.conftest import task_states
from tests.e2e.conftest import xcom
from tests.e2e.test_sql_transfer import expected_metrics, table_rows
from tests.integration.conftest import MotoS3
from tests.sql_fixtures import SqlDb

pytestmark = pytest.mark.e2e

RUN_DATE = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


# the emulator's default: real SES's Statistics (ProcessedRecordsCount only)
@pytest.mark.ses_export_emulator(time_scale=0.02)
def test_vdm_daily_exports_every_dimension_and_aggregation(
    load_example_dag: Any,
    run_dag: Any,
    ses_export_emulator: Any,
    moto_s3: MotoS3,
    sqlite_db: SqlDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "1")
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_SQL_CONN_ID", sqlite_db.conn_id)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_BUCKET", moto_s3.bucket)
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_DEST_CONN_ID", moto_s3.conn_id)
    dag = load_example_dag("example_ses_vdm_daily")
    at = {"logical_date" if AIRFLOW_V_3 else "execution_date": RUN_DATE}

    dr = run_dag(dag, **at)

    states = task_states(dr)
    assert str(getattr(dr.state, "value", dr.state)) == "success", states
    assert sorted(k for k in states if k.startswith("export_metrics[")) == [f"export_metrics[{i}]" for i in range(6)]
    assert set(states.values()) == {"success"}, states

    jobs = ses_export_emulator.jobs()
    assert len(jobs) == 6
    client = ses_export_emulator.client()
    seen = set()
    for job in jobs:
        source = client.get_export_job(JobId=job["JobId"])["ExportDataSource"]["MetricsDataSource"]
        # the run for 2026-11-02 covers the previous UTC day
        assert source["StartDate"] == dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
        assert source["EndDate"] == RUN_DATE
        (dimension,) = source["Dimensions"]
        (aggregation,) = {m["Aggregation"] for m in source["Metrics"]}
        seen.add((dimension, aggregation))
    assert seen == {(d, a) for d in ("EMAIL_IDENTITY", "CONFIGURATION_SET", "ISP") for a in ("VOLUME", "RATE")}

    report = xcom(dr, "report")
    assert report["exports"] == 6
    assert set(report["processed_records"]) == {job["JobId"] for job in jobs}
    for job_id, processed in report["processed_records"].items():
        statistics = client.get_export_job(JobId=job_id)["Statistics"]
        assert statistics == {"ProcessedRecordsCount": processed}  # real SES: no ExportedRecordsCount

    # every export file was copied into the bucket, whole: one CSV header + one line per record each
    copied = {}
    for i in range(6):
        uri = xcom(dr, "copy_to_s3", "s3_uri", map_index=i)
        assert uri == f"s3://{moto_s3.bucket}/ses/vdm-daily/2026-11-01/export-{i}.csv"
        key = uri.split("/", 3)[3]
        body = copied[key] = moto_s3.get(key)
        assert xcom(dr, "copy_to_s3", map_index=i) == uri  # return_value is the s3:// URI
        assert xcom(dr, "copy_to_s3", "size_bytes", map_index=i) == len(body)
        records = xcom(dr, "copy_to_s3", "records", map_index=i)
        assert len(body.splitlines()) == records + 1
        # the report's records are the copy's, per job
        job_id = xcom(dr, "job_ids")[i]
        assert report["records"][job_id] == records

    # after the copy, the six exports were loaded into one tidy metrics table: exactly the copied files' values
    from airflow_provider_sesexport.transfers._sql_tables import METRICS_TABLE

    expected: Counter[tuple[Any, ...]] = Counter()
    for i in range(6):
        job_id = xcom(dr, "load_to_sql", "job_id", map_index=i)
        assert xcom(dr, "load_to_sql", "table", map_index=i) == "ses_vdm_metrics"
        body = copied[f"ses/vdm-daily/2026-11-01/export-{i}.csv"]
        rows = expected_metrics(body, job_id, RUN_DATE - dt.timedelta(days=1), RUN_DATE)
        assert xcom(dr, "load_to_sql", "rows", map_index=i) == sum(rows.values()) > 0
        expected += rows
    assert table_rows(sqlite_db, "ses_vdm_metrics", METRICS_TABLE) == expected
    # one dimension per export, the others null; 3 dimensions x (7 VOLUME + 6 RATE metrics)
    assert sum(expected.values()) == 3 * 13
