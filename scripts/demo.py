"""
``make demo`` (``python scripts/demo.py``): the whole product, offline, in about a minute.

Starts the emulator on 127.0.0.1, points Airflow's ``aws_default`` connection at it, starts an export
job with ``SesExportJobHook``, runs ``example_dags/example_ses_export_gate.py`` in a real Airflow
(``dag.test()`` on a temporary SQLite metadata DB), then shows the sensor's poke lines, the statistics,
the export URL with its query string stripped, and the first lines of the export file. Everything it
starts is stopped; the exit status is non-zero if anything failed.

A repository script, in neither wheel: it needs ``example_dags/``. Airflow and the provider are imported
only once the temporary ``AIRFLOW_HOME`` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import os
import re
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ses_export_emulator import SesExportEmulator

DAG_ID = "example_ses_export_gate"
REPO = Path(__file__).resolve().parents[1]


def _say(text: str = "") -> None:
    print(text, flush=True)


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Airflow's task logs, on both major versions) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _prepare_airflow(home: Path, dags_folder: Path) -> None:
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["SES_EXPORT_EXAMPLE_POKE_INTERVAL"] = "1"


def _load_dag(dags_folder: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined]
    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.get_dag(DAG_ID)


def run_demo(dags_folder: Path, time_scale: float) -> int:
    """
    Run the demo; return the process exit status.

    :param dags_folder: the folder holding ``example_ses_export_gate.py``.
    :param time_scale: the emulator's time scale (URL lifetime, create rate).
    """
    home = Path(tempfile.mkdtemp(prefix="ses-export-demo-"))
    log_file = home / "airflow-run.log"
    _prepare_airflow(home, dags_folder)

    try:
        # the emulator's default behaviour is real SES's (Statistics: ProcessedRecordsCount only)
        with SesExportEmulator(port=0, seed=7, time_scale=time_scale) as emu:
            # The job stays PROCESSING until the sensor has polled three times (Airflow's own start-up time
            # varies too much to rely on durations), so the reschedule loop is always visible.
            emu.advance_after(reads=3)
            os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = emu.airflow_conn_json()
            os.environ["AWS_DEFAULT_REGION"] = emu.region
            _say(f"1. SES v2 export-job emulator listening on {emu.endpoint_url}")
            with _output_to(log_file):
                from airflow.utils import db

                db.resetdb()
                from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook

                end = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
                job_id = SesExportJobHook().create_export_job(
                    {
                        "MetricsDataSource": {
                            "Dimensions": {"EMAIL_IDENTITY": ["example.com", "example.org"]},
                            "Namespace": "VDM",
                            "Metrics": [
                                {"Name": "SEND", "Aggregation": "VOLUME"},
                                {"Name": "DELIVERY", "Aggregation": "RATE"},
                            ],
                            "StartDate": end - dt.timedelta(days=3),
                            "EndDate": end,
                        }
                    },
                    data_format="CSV",
                )
            _say(f"2. Started export job {job_id} with SesExportJobHook.create_export_job")
            _say(f"3. Running DAG {DAG_ID} in Airflow (SQLite metadata DB in {home}) ...")
            with _output_to(log_file):
                dag = _load_dag(dags_folder)
                dr = dag.test(run_conf={"job_id": job_id})
            log = log_file.read_text(errors="replace")
            pokes = [m.group(0) for m in re.finditer(rf"SES export job {job_id}: status \w+, [^\n\[]*", log)]
            _say("   sensor poke lines:")
            for line in dict.fromkeys(pokes):
                _say(f"     {line.strip()}")
            states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
            _say(f"   task states: {states}")
            if str(getattr(dr.state, "value", dr.state)) != "success":
                _say(f"DEMO FAILED: the DAG run ended {dr.state}; Airflow's log: {log_file}")
                return 1
            ti = dr.get_task_instance("export_result")
            statistics = ti.xcom_pull(task_ids="export_result", key="statistics")
            s3_url = ti.xcom_pull(task_ids="export_result", key="s3_url")
            from airflow_provider_sesexport.utils.redaction import redact_url

            _say(f"4. Statistics (XCom 'statistics'): {statistics}")
            _say(f"5. Export URL (XCom 's3_url', query string stripped): {redact_url(s3_url)}")
            _say("6. First lines of the export file (a metrics CSV as real SES writes it):")
            with urllib.request.urlopen(s3_url, timeout=30) as response:
                lines = response.read().decode("utf-8", "replace").splitlines()
            for line in itertools.islice(lines, 4):
                _say(f"     {line}")
            report = dr.get_task_instance("report").xcom_pull(task_ids="report")
            _say(
                f"   records read by the report task: {report['records']} (the file's data lines: {len(lines) - 1}); "
                f"SES ProcessedRecordsCount: {report['processed_records']} (messages examined, not rows written)"
            )
            if report["records"] != len(lines) - 1:
                _say("DEMO FAILED: the report task's record count differs from the file's data lines")
                return 1
        _say("7. Emulator stopped. Demo OK.")
        return 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of ``python scripts/demo.py``.

    :param argv: command-line arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--dags-folder", type=Path, default=REPO / "example_dags")
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if not (args.dags_folder / f"{DAG_ID}.py").is_file():
        parser.error(f"--dags-folder {args.dags_folder} has no {DAG_ID}.py ")
    return run_demo(args.dags_folder.resolve(), args.time_scale)


if __name__ == "__main__":
    sys.exit(main())
