"""
Benchmark: loading a Message Insights export into PostgreSQL — SesExportToSqlOperator against the two-step
anchor and the database's own floor.

Everything runs on this machine in one run: the SES export emulator (this process) serves a Message
Insights export of about ``--rows`` rows (its ``row_multiplier``) in each of ``--formats`` (CSV, JSON), moto's
S3 server (a separate process) holds the anchor's copy, and a throwaway PostgreSQL server of our own
(``deployment.services``, 127.0.0.1) receives the rows, a fresh database per load. Each Python method runs in
its own subprocess, which reports its wall time and peak RSS (VmHWM). Each method runs ``--repeat`` times (3),
the methods taking turns, and its fastest run counts: the machine may be shared, and a busy moment should not
decide a ratio.

* ``operator``: ``SesExportToSqlOperator.execute`` (a Message Insights CSV file streamed as it is into
  ``COPY``, JSON through the record reader; a temporary table; one transaction);
* ``anchor``: what Airflow offers today, two steps: ``SesExportToS3Operator`` copies the file into S3,
  then the Amazon provider's ``S3ToSqlOperator`` downloads it to a temporary file and inserts what a
  ``csv.reader`` (CSV) or ``json.load`` (JSON) parser yields (no ``job_id``, no idempotency) into the same table
  definition through ``PostgresHook.insert_rows`` (``commit_every=1000``);
* ``floor``: psql's ``\\copy`` of the same file, already on local disk, into a table of text columns (CSV: one
  column per field; JSON: one column per line): the database's own speed, no parsing or typing.

Byte code is cached as on a real deployment (a temporary ``PYTHONPYCACHEPREFIX``, filled by one unmeasured
warm-up run per Python method): this machine sets ``PYTHONDONTWRITEBYTECODE``, and without a cache every run
would compile the modules it imports lazily (the PostgreSQL hook, psycopg, botocore's parts), which no installed
environment does. "load Δ" is the peak RSS minus the RSS after imports. Two sizes show whether memory stays flat
as the export grows. Run e.g.::

    python benchmarks/export_to_sql.py                    # 10,000 and 100,000 rows, CSV and JSON
    python benchmarks/export_to_sql.py --rows 50000,500000 --formats CSV
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import re
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


def parse_insights_json(path: str) -> Any:
    """The anchor's parser: SES's Message Insights JSON array as rows in the CSV's column order."""
    from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS

    with open(path) as file:
        for record in json.load(file):
            yield [record.get(name) or None for name in MESSAGE_INSIGHTS_COLUMNS]


# -- workers (run in a subprocess each) ----------------------------------------------------------
def worker(method: str, job_id: str, data_format: str) -> dict[str, Any]:
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

        key = f"bench/{job_id}.{data_format.lower()}"
        parser = parse_insights_json if data_format == "JSON" else parse_insights_csv
        copy = SesExportToS3Operator(
            task_id="copy", job_id=job_id, s3_bucket=BUCKET, s3_key=key, aws_conn_id="bench_ses",
            dest_aws_conn_id="bench_s3", replace=True,
        )  # fmt: skip
        load = S3ToSqlOperator(
            task_id="load", s3_bucket=BUCKET, s3_key=key, table=TABLE, parser=parser,
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
def create_job(emu: Any, data_format: str = "CSV") -> str:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    source = {"StartDate": start, "EndDate": start + dt.timedelta(days=1), "MaxResults": ROWS_PER_JOB}
    job_id = emu.client().create_export_job(
        ExportDataSource={"MessageInsightsDataSource": source}, ExportDestination={"DataFormat": data_format}
    )["JobId"]
    emu.complete_job(job_id)
    return str(job_id)


def aws_conn(endpoint: str) -> str:
    extra = {"region_name": "us-east-1", "endpoint_url": endpoint}
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def fresh_database(pg: Any, method: str, data_format: str) -> str:
    """A new database holding the table: ours (operator), without job_id to fill (anchor), text columns (floor)."""
    from airflow_provider_sesexport.transfers._sql_tables import MESSAGE_INSIGHTS_TABLE
    from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS

    name = f"bench_{method}_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    if method == "floor":  # CSV: the twelve fields and the trailing empty one; JSON: one line each
        columns = [*MESSAGE_INSIGHTS_COLUMNS, "trailing_empty"] if data_format == "CSV" else ["line"]
        ddls = [f"CREATE TABLE {TABLE} ({', '.join(f'{c} TEXT' for c in columns)})"]
    else:
        ddls = MESSAGE_INSIGHTS_TABLE.create_statements("postgresql", TABLE, None)
        if method == "anchor":  # it fills neither job_id nor data_source
            ddls = [re.sub(r"\b(job_id|data_source) (.+?) NOT NULL", r"\1 \2", ddl) for ddl in ddls]
    for ddl in ddls:
        psql(pg, name, "-qc", ddl)
    return name


def psql(pg: Any, database: str, *args: str) -> str:
    command = [str(Path(pg_bin()) / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", database]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


def floor(pg: Any, database: str, path: str, data_format: str) -> dict[str, Any]:
    """psql's \\copy of the local file into the text table: wall time (psql's start included) and rows."""
    # JSON: each line one value, with quote and delimiter characters the file never holds
    options = "FORMAT csv, HEADER true" if data_format == "CSV" else "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
    start = time.perf_counter()
    psql(pg, database, "-qc", f"\\copy {TABLE} FROM '{path}' WITH ({options})")
    wall = time.perf_counter() - start
    rows = int(psql(pg, database, "-tAc", f"SELECT count(*) FROM {TABLE}").strip())
    if data_format == "JSON":
        rows -= 2  # the lines "[" and "]"
    return {"method": "floor", "wall": wall, "peak_kib": 0, "baseline_kib": 0, "rows": rows, "cpu": 0.0}


def pg_bin() -> str:
    from deployment.services import postgres_bin_dir

    return str(postgres_bin_dir())


def run_method(method: str, job_id: str, data_format: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--job-id", job_id, "--format", data_format],
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
    parser.add_argument("--rows", default="10000,100000", help="comma-separated export sizes in rows (about)")
    parser.add_argument("--formats", default="CSV,JSON", help="comma-separated DataFormats")
    parser.add_argument("--methods", default="operator,anchor,floor", help="comma-separated subset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method, format and size (the fastest counts)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--format", default="CSV", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.worker:
        print(json.dumps(worker(args.worker, args.job_id, args.format)))
        return

    import requests

    from airflow_provider_sesexport.records import count_records
    from benchmarks.export_transfer import moto_server_process, s3_client
    from deployment.services import PostgresServer
    from ses_export_emulator import SesExportEmulator

    with SesExportEmulator(port=0, time_scale=0.01, create_rate_limit=None) as probe:
        job = probe.client().get_export_job(JobId=create_job(probe))
        base_rows = count_records(requests.get(job["ExportDestination"]["S3Url"], timeout=60).content)
    sizes = [int(n) for n in args.rows.split(",")]
    formats = [f.strip().upper() for f in args.formats.split(",") if f.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    results: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    warmed: set[str] = set()
    with (
        tempfile.TemporaryDirectory(prefix="bench-pg-") as pg_root,
        PostgresServer(Path(pg_root)) as pg,
        moto_server_process() as s3,
        tempfile.TemporaryDirectory(prefix="bench-files-") as files,
    ):
        os.chmod(files, 0o755)  # psql reads the file itself (\\copy is client-side)
        s3_client(s3).create_bucket(Bucket=BUCKET)
        for data_format in formats:
            for wanted in sizes:
                multiplier = max(1, math.ceil(wanted / base_rows))
                with SesExportEmulator(
                    port=0, time_scale=0.01, create_rate_limit=None, row_multiplier=multiplier
                ) as emu:
                    job_id = create_job(emu, data_format)
                    local = Path(files) / f"{job_id}.{data_format.lower()}"
                    url = emu.client().get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
                    local.write_bytes(requests.get(url, timeout=300).content)
                    expected = count_records(local.read_bytes())
                    results[(data_format, expected)] = {}
                    for method in [m for m in methods if m != "floor" and m not in warmed]:  # fills the byte-code cache
                        env = worker_env(home, emu, s3, pg, fresh_database(pg, method, data_format))
                        run_method(method, job_id, data_format, env)
                        warmed.add(method)
                    for _ in range(args.repeat):  # methods interleaved, so a busy moment hits them alike
                        for method in methods:
                            database = fresh_database(pg, method, data_format)
                            if method == "floor":
                                result = floor(pg, database, str(local), data_format)
                            else:
                                env = worker_env(home, emu, s3, pg, database)
                                result = run_method(method, job_id, data_format, env)
                            if result["rows"] != expected:
                                raise SystemExit(f"{method}: {result['rows']} rows in the table, expected {expected}")
                            best = results[(data_format, expected)].get(method)
                            if best is None or result["wall"] < best["wall"]:
                                results[(data_format, expected)][method] = result
                            with contextlib.suppress(Exception):
                                key = f"bench/{job_id}.{data_format.lower()}"
                                s3_client(s3).delete_object(Bucket=BUCKET, Key=key)
        if pg.home != pg.root:  # the cluster lived in a /tmp folder the postgres user can reach
            pg.stop()
            shutil.rmtree(pg.home, ignore_errors=True)
    runs = "one run" if args.repeat == 1 else f"the fastest of {args.repeat} runs"
    print(f"python {sys.version.split()[0]}; {runs} per method, format and size; PostgreSQL on 127.0.0.1")
    report(results)


def worker_env(home: str, emu: Any, s3: str, pg: Any, database: str) -> dict[str, str]:
    pg_conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port, "login": pg.user}
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {
        **environ,
        "PYTHONPYCACHEPREFIX": str(Path(home, "pycache")),
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


def report(results: dict[tuple[str, int], dict[str, dict[str, Any]]]) -> None:
    header = f"{'format':<6} {'rows':>9} {'method':<9} {'wall s':>8} {'rows/s':>9} {'CPU s':>7}"
    print(f"{header} {'peak RSS MiB':>13} {'load Δ MiB':>11}")
    for (data_format, rows), by_method in results.items():
        for method, r in by_method.items():
            memory = (
                ""
                if method == "floor"
                else f"{r['peak_kib'] / 1024:>13.1f} {(r['peak_kib'] - r['baseline_kib']) / 1024:>11.1f}"
            )
            rate = rows / r["wall"]
            print(f"{data_format:<6} {rows:>9} {method:<9} {r['wall']:>8.2f} {rate:>9.0f} {r['cpu']:>7.2f} {memory}")
    print()
    print(f"{'figure':<40} {'operator':>10} {'anchor':>10} {'ratio':>7}")
    for (data_format, rows), by_method in results.items():
        op = by_method.get("operator")
        if not op:
            continue
        op_rate = rows / op["wall"]
        for anchor in ("anchor", "floor"):
            if anchor in by_method:
                rate = rows / by_method[anchor]["wall"]
                label = f"rows/s {data_format} {rows} (ours/{anchor})"
                print(f"{label:<40} {op_rate:>10.0f} {rate:>10.0f} {op_rate / rate:>7.3f}")
        if "anchor" in by_method:
            a = by_method["anchor"]
            op_d, a_d = (op["peak_kib"] - op["baseline_kib"]) / 1024, (a["peak_kib"] - a["baseline_kib"]) / 1024
            label = f"load Δ RSS MiB {data_format} {rows}"
            print(f"{label:<40} {op_d:>10.1f} {a_d:>10.1f} {op_d / max(a_d, 0.1):>7.2f}")
    for data_format in dict.fromkeys(f for f, _ in results):
        ops = [(rows, m["operator"]) for (f, rows), m in results.items() if f == data_format and "operator" in m]
        if len(ops) >= 2:
            (small, s), (large, big) = ops[0], ops[-1]
            growth = (big["peak_kib"] - big["baseline_kib"]) / max(s["peak_kib"] - s["baseline_kib"], 1)
            print(
                f"operator load Δ RSS {data_format}, {large} rows / {small} rows: {growth:.2f} "
                f"(flat = 1; rows grew {large / small:.1f}x)"
            )


if __name__ == "__main__":
    main()
