"""
Benchmark: loading a Message Insights export into PostgreSQL — SesExportToSqlOperator against the two-step anchor.

Everything runs on this machine in one run: the SES export emulator (this process) serves a Message
Insights CSV of about ``--rows`` rows (its ``row_multiplier``), moto's S3 server (a separate process)
holds the anchor's copy, and a throwaway PostgreSQL server of our own (``deployment.services``,
127.0.0.1) receives the rows, a fresh database per load. Each method runs in its own subprocess, which
reports its wall time and peak RSS (VmHWM):

* ``operator``: ``SesExportToSqlOperator.execute`` (streamed records, typed, upsert per batch);
* ``anchor``: what Airflow offers today, two steps: ``SesExportToS3Operator`` copies the file into S3,
  then the Amazon provider's ``S3ToSqlOperator`` downloads it to a temporary file and inserts what a
  ``csv.reader`` parser yields (header skipped, the trailing empty field dropped, ``""`` as NULL; no
  ``job_id``, no idempotency) into the same table definition.

Both use the connection's ``PostgresHook.insert_rows`` with ``commit_every=1000``. "load Δ" is the peak RSS
minus the RSS after imports. Two sizes show whether memory stays flat as the export grows. Run e.g.::

    python benchmarks/export_to_sql.py                    # about 20,000 and 100,000 rows
    python benchmarks/export_to_sql.py --rows 50000,500000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUCKET = "bench-exports"
ROWS_PER_JOB = 10_000  # Message Insights' MaxResults ceiling; the emulator's row_multiplier scales it
TABLE = "ses_message_insights"


class TI:
    """Just enough of a task instance for ``execute``: XComs kept in a dict."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def parse_insights_csv(path: str) -> Any:
    """The anchor's parser: SES's Message Insights CSV as rows (header skipped, trailing comma dropped)."""
    import csv

    with open(path, newline="") as file:
        rows = csv.reader(file)
        next(rows, None)
        for row in rows:
            yield [value or None for value in row[:-1]]


# -- workers (run in a subprocess each) ----------------------------------------------------------
def worker(method: str, job_id: str) -> dict[str, Any]:
    from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator
    from benchmarks.export_transfer import vm_kib

    if method == "operator":
        op = SesExportToSqlOperator(
            task_id="load", job_id=job_id, table=TABLE, sql_conn_id="bench_pg", aws_conn_id="bench_ses"
        )
        baseline, cpu0 = vm_kib("VmRSS"), time.process_time()
        start = time.perf_counter()
        op.execute({"ti": TI()})  # type: ignore[arg-type]
        wall = time.perf_counter() - start
    elif method == "anchor":
        from airflow.providers.amazon.aws.transfers.s3_to_sql import S3ToSqlOperator

        from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
        from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS

        key = f"bench/{job_id}.csv"
        copy = SesExportToS3Operator(
            task_id="copy", job_id=job_id, s3_bucket=BUCKET, s3_key=key, aws_conn_id="bench_ses",
            dest_aws_conn_id="bench_s3", replace=True,
        )  # fmt: skip
        load = S3ToSqlOperator(
            task_id="load", s3_bucket=BUCKET, s3_key=key, table=TABLE, parser=parse_insights_csv,
            column_list=list(MESSAGE_INSIGHTS_COLUMNS), sql_conn_id="bench_pg", aws_conn_id="bench_s3",
        )  # fmt: skip
        baseline, cpu0 = vm_kib("VmRSS"), time.process_time()
        start = time.perf_counter()
        copy.execute({"ti": TI()})  # type: ignore[arg-type]
        load.execute({})  # type: ignore[arg-type]
        wall = time.perf_counter() - start
    else:
        raise SystemExit(f"unknown method {method}")
    rows = op_rows()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = max(vm_kib("VmHWM"), children.ru_maxrss)
    cpu = time.process_time() - cpu0
    return {"method": method, "wall": wall, "peak_kib": peak, "baseline_kib": baseline, "rows": rows, "cpu": cpu}


def op_rows() -> int:
    from airflow_provider_sesexport._compat import get_connection

    return int(get_connection("bench_pg").get_hook().get_first(f"SELECT count(*) FROM {TABLE}")[0])


# -- orchestration -------------------------------------------------------------------------------
def create_job(emu: Any) -> str:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    source = {"StartDate": start, "EndDate": start + dt.timedelta(days=1), "MaxResults": ROWS_PER_JOB}
    job_id = emu.client().create_export_job(
        ExportDataSource={"MessageInsightsDataSource": source}, ExportDestination={"DataFormat": "CSV"}
    )["JobId"]
    emu.complete_job(job_id)
    return str(job_id)


def aws_conn(endpoint: str) -> str:
    extra = {"region_name": "us-east-1", "endpoint_url": endpoint}
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def fresh_database(pg: Any, method: str) -> str:
    """A new database holding the table (ours for the operator; the anchor's has no job_id to fill)."""
    from airflow_provider_sesexport.transfers._sql_tables import MESSAGE_INSIGHTS_TABLE

    name = f"bench_{method}_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    (ddl,) = MESSAGE_INSIGHTS_TABLE.create_statements("postgresql", TABLE, None)
    if method == "anchor":
        ddl = ddl.replace("job_id TEXT NOT NULL", "job_id TEXT")
    psql = [str(Path(pg_bin()) / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", name, "-qc", ddl]
    subprocess.run(psql, check=True)
    return name


def pg_bin() -> str:
    from deployment.services import postgres_bin_dir

    return str(postgres_bin_dir())


def run_method(method: str, job_id: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--job-id", job_id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="20000,100000", help="comma-separated export sizes in rows (about)")
    parser.add_argument("--methods", default="operator,anchor", help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.worker:
        print(json.dumps(worker(args.worker, args.job_id)))
        return

    from airflow_provider_sesexport.emulator import SesExportEmulator
    from benchmarks.export_transfer import moto_server_process, s3_client
    from deployment.services import PostgresServer

    with SesExportEmulator(port=0, time_scale=0.01, create_rate_limit=None) as probe:
        client = probe.client()
        job = client.get_export_job(JobId=create_job(probe))
        import requests

        base_rows = len(requests.get(job["ExportDestination"]["S3Url"], timeout=60).content.splitlines()) - 1
    sizes = [int(n) for n in args.rows.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    results: dict[int, dict[str, dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-pg-") as pg_root,
        PostgresServer(Path(pg_root)) as pg,
        moto_server_process() as s3,
    ):
        s3_client(s3).create_bucket(Bucket=BUCKET)
        for wanted in sizes:
            multiplier = max(1, math.ceil(wanted / base_rows))
            with SesExportEmulator(port=0, time_scale=0.01, create_rate_limit=None, row_multiplier=multiplier) as emu:
                job_id = create_job(emu)
                expected = base_rows * multiplier
                results[expected] = {}
                for method in methods:
                    database = fresh_database(pg, method)
                    pg_conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port, "login": pg.user}
                    env = {
                        **os.environ,
                        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                        "AIRFLOW_HOME": home,
                        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                        "AIRFLOW_CONN_BENCH_SES": aws_conn(emu.endpoint_url),
                        "AIRFLOW_CONN_BENCH_S3": aws_conn(s3),
                        "AIRFLOW_CONN_BENCH_PG": json.dumps({**pg_conn, "schema": database}),
                        "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                    }
                    result = run_method(method, job_id, env)
                    if result["rows"] != expected:
                        raise SystemExit(f"{method}: {result['rows']} rows in the table, expected {expected}")
                    results[expected][method] = result
                    with contextlib.suppress(Exception):
                        s3_client(s3).delete_object(Bucket=BUCKET, Key=f"bench/{job_id}.csv")
        if pg.home != pg.root:  # the cluster lived in a /tmp folder the postgres user can reach
            pg.stop()
            shutil.rmtree(pg.home, ignore_errors=True)
    print(f"python {sys.version.split()[0]}; one run per method and size; PostgreSQL on 127.0.0.1")
    report(results)


def report(results: dict[int, dict[str, dict[str, Any]]]) -> None:
    print(f"{'rows':>9} {'method':<9} {'wall s':>8} {'rows/s':>9} {'CPU s':>7} {'peak RSS MiB':>13} {'load Δ MiB':>11}")
    for rows, by_method in results.items():
        for method, r in by_method.items():
            delta = (r["peak_kib"] - r["baseline_kib"]) / 1024
            print(
                f"{rows:>9} {method:<9} {r['wall']:>8.2f} {rows / r['wall']:>9.0f} {r['cpu']:>7.2f} "
                f"{r['peak_kib'] / 1024:>13.1f} {delta:>11.1f}"
            )
    print()
    print(f"{'figure':<36} {'operator':>10} {'anchor':>10} {'ratio':>7}")
    for rows, by_method in results.items():
        op, anchor = by_method.get("operator"), by_method.get("anchor")
        if not op or not anchor:
            continue
        op_rate, a_rate = rows / op["wall"], rows / anchor["wall"]
        print(f"{f'rows/s ({rows} rows)':<36} {op_rate:>10.0f} {a_rate:>10.0f} {op_rate / a_rate:>7.2f}")
        op_peak, a_peak = op["peak_kib"] / 1024, anchor["peak_kib"] / 1024
        print(f"{f'peak RSS MiB ({rows} rows)':<36} {op_peak:>10.1f} {a_peak:>10.1f} {op_peak / a_peak:>7.2f}")
        op_d, a_d = (op["peak_kib"] - op["baseline_kib"]) / 1024, (anchor["peak_kib"] - anchor["baseline_kib"]) / 1024
        print(f"{f'load Δ RSS MiB ({rows} rows)':<36} {op_d:>10.1f} {a_d:>10.1f} {op_d / max(a_d, 0.1):>7.2f}")
    ops = [(rows, m["operator"]) for rows, m in results.items() if "operator" in m]
    if len(ops) >= 2:
        (small, s), (large, big) = ops[0], ops[-1]
        growth = (big["peak_kib"] - big["baseline_kib"]) / max(s["peak_kib"] - s["baseline_kib"], 1)
        print(
            f"operator load Δ RSS, {large} rows / {small} rows: {growth:.2f} (flat = 1; rows grew {large / small:.1f}x)"
        )


if __name__ == "__main__":
    main()
