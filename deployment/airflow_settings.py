"""What every process of the deployment is configured with: the environment an MWAA image gives Airflow.

Everything is an environment variable, as on MWAA (``AIRFLOW__SECTION__KEY`` configuration, ``AIRFLOW_CONN_*``
connections in JSON form). One fernet key, one JWT secret and one secret key are shared by every process.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
#: The dummy keys of ``aws_default`` (the emulator and moto check no signature).
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
BUCKET = "ses-exports"
EXPORTS_DATABASE = "ses_exports"  # the database example_ses_vdm_daily loads into (connection ses_exports_db)
#: Seconds between the example sensors' polls (the examples read it at parse time).
POKE_INTERVAL = "2"
#: Seconds without a heartbeat after which the scheduler fails a running task (and retries it, if it has retries
#: left): the task of a Celery worker that died. MWAA keeps Airflow's 300; the fault drills wait for it.
TASK_HEARTBEAT_TIMEOUT = "60"
#: Task slots per Celery worker.
WORKER_CONCURRENCY = 8


@dataclass
class Ports:
    """The TCP ports the deployment listens on, all on 127.0.0.1."""

    postgres: int
    redis: int
    emulator: int
    moto: int
    ui: int


@dataclass
class Secrets:
    """Keys every Airflow process shares (generated once per deployment, kept in its state folder)."""

    fernet_key: str
    jwt_secret: str
    secret_key: str


def airflow_3(image: str) -> bool:
    return not image.startswith("2.")


def aws_connection(ports: Ports) -> str:
    """``aws_default`` as an MWAA user defines it: JSON, SES at the emulator, S3 at moto (``service_config``)."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEY_ID,
            "password": SECRET_ACCESS_KEY,
            "extra": {
                "region_name": REGION,
                "endpoint_url": f"http://{LOOPBACK}:{ports.emulator}",
                "service_config": {"s3": {"endpoint_url": f"http://{LOOPBACK}:{ports.moto}"}},
            },
        }
    )


def emulator_settings(ports: Ports, today: dt.date) -> list[str]:
    """What a user needs to create an export job against the deployment's SES (the emulator), e.g. for the gate
    example, printed by ``make deployment``: endpoint, region, credentials and a ready ``aws`` command.

    :param ports: where the servers listen.
    :param today: the UTC date the command's example export ends on (it exports the day before).
    """
    endpoint = f"http://{LOOPBACK}:{ports.emulator}"
    source = {
        "MetricsDataSource": {
            "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
            "Namespace": "VDM",
            "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
            "StartDate": f"{today - dt.timedelta(days=1)}T00:00:00Z",
            "EndDate": f"{today}T00:00:00Z",
        }
    }
    command = (
        f"AWS_ACCESS_KEY_ID={ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY} aws sesv2 create-export-job "
        f"--endpoint-url {endpoint} --region {REGION} --export-data-source {shlex.quote(json.dumps(source))} "
        "--export-destination DataFormat=CSV"
    )
    return [
        "SES (the export-job emulator, what aws_default points at):",
        f"  endpoint:    {endpoint}",
        f"  region:      {REGION}",
        f"  credentials: access key {ACCESS_KEY_ID}, secret key {SECRET_ACCESS_KEY}",
        "  create a job (its JobId is the gate example's job_id):",
        f"    {command}",
        f"S3 (moto): endpoint http://{LOOPBACK}:{ports.moto}, bucket {BUCKET}, same region and credentials",
    ]


def airflow_environment(image: str, home: Path, dags_folder: Path, ports: Ports, secrets: Secrets) -> dict[str, str]:
    """The ``AIRFLOW__*`` settings, connections and example settings of every Airflow process.

    :param image: the MWAA image (``3.3.1``).
    :param home: ``AIRFLOW_HOME``.
    :param dags_folder: the DAGs folder.
    :param ports: where the servers listen.
    :param secrets: the shared keys.
    """
    db = f"{LOOPBACK}:{ports.postgres}/airflow"
    ui = f"http://{LOOPBACK}:{ports.ui}"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__FERNET_KEY": secrets.fernet_key,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://airflow@{db}",
        # MWAA: SQS broker (no local equivalent: Redis here), the metadata DB as result backend
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{LOOPBACK}:{ports.redis}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://airflow@{db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        # Redis only: `airflow celery worker --celery-hostname` (Celery provider 3.18, MWAA 3.2.1) asks the broker
        # for running workers before Celery forks its pool, and every pool child then blocks for good reading the
        # inherited, still-polling Redis socket (celery/celery#8874): no task ever runs. A read timeout lets each
        # child give up on that socket after a few seconds. (Provider 3.23 checks with a throwaway app instead.)
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__SOCKET_TIMEOUT": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "1800",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__METRICS__STATSD_ON": "False",
        "AIRFLOW__API__SECRET_KEY": secrets.secret_key,
        "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.secret_key,
        # connections the MWAA way: environment variables in JSON form
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(ports),
        # the loader's target: a database of its own in the deployment's PostgreSQL (example_ses_vdm_daily)
        "AIRFLOW_CONN_SES_EXPORTS_DB": json.dumps(
            {"conn_type": "postgres", "host": LOOPBACK, "port": ports.postgres, "login": "airflow"}
            | {"schema": EXPORTS_DATABASE}
        ),
        "AWS_DEFAULT_REGION": REGION,
        # what the example DAGs read
        "SES_EXPORT_EXAMPLE_BUCKET": BUCKET,
        "SES_EXPORT_EXAMPLE_POKE_INTERVAL": POKE_INTERVAL,
    }
    if airflow_3(image):
        env.update(
            {
                "AIRFLOW__API__HOST": LOOPBACK,
                "AIRFLOW__API__PORT": str(ports.ui),
                "AIRFLOW__API__BASE_URL": ui,
                "AIRFLOW__API__WORKERS": "2",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.jwt_secret,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ui}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
                "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "False",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": TASK_HEARTBEAT_TIMEOUT,
            }
        )
    else:
        env.update(
            {
                "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": TASK_HEARTBEAT_TIMEOUT,
                "AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER": "True",
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": LOOPBACK,
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(ports.ui),
                "AIRFLOW__WEBSERVER__BASE_URL": ui,
                "AIRFLOW__WEBSERVER__WORKERS": "2",
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth,"
                "airflow.providers.fab.auth_manager.api.auth.backend.session",
            }
        )
    return env


def airflow_processes(image: str, airflow: str) -> dict[str, list[str]]:
    """The long-running Airflow processes by name, each its command line (logs served from local files only:
    ``--skip-serve-logs`` keeps the log servers, which bind every interface, from starting).

    :param image: the MWAA image.
    :param airflow: the ``airflow`` executable of the image's environment.
    """
    ui = [airflow, "api-server"] if airflow_3(image) else [airflow, "webserver"]
    processes = {
        "ui": ui,
        "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [airflow, "dag-processor"],
    }
    for n in (1, 2):
        processes[f"triggerer-{n}"] = [airflow, "triggerer", "--skip-serve-logs"]
    for n in (1, 2):
        processes[f"worker-{n}"] = [
            airflow, "celery", "worker", "--celery-hostname", f"worker-{n}@{LOOPBACK}", "--skip-serve-logs",
        ]  # fmt: skip
    return processes
