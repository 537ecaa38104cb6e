"""Bring an MWAA-shaped Airflow up on 127.0.0.1 and take it down again, by process id.

State (ports, keys, pid files, logs, the PostgreSQL cluster, ``AIRFLOW_HOME``) lives in ``.deployment/<image>/``.
Run with the image's Python environment (``.venv-mwaa-<image>``, built by ``.ci/mwaa_env.sh <image> deploy``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deployment.airflow_settings import (
    BUCKET,
    EXPORTS_DATABASE,
    LOOPBACK,
    Ports,
    Secrets,
    airflow_3,
    airflow_environment,
    airflow_processes,
    emulator_settings,
)
from deployment.services import (
    PostgresServer,
    ProcessRecord,
    RedisServer,
    free_port,
    process_start_time,
    spawn,
    wait_for_port,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
#: Set in every process the deployment starts: how ``down`` recognises a descendant that left its process group.
MARKER = "SESEXPORT_DEPLOYMENT"
#: Emulator options: jobs finish in a fraction of a second, download URLs still live five real minutes.
EMULATOR_OPTIONS = ["--seed", "11", "--time-scale", "0.1", "--url-expiry-seconds", "3000"]
#: Stopped in this order (the reverse of starting).
STOP_ORDER = (
    "worker-1", "worker-2", "triggerer-1", "triggerer-2", "dag-processor", "scheduler", "ui", "moto", "emulator",
    "redis",
)  # fmt: skip


def state_dir(image: str) -> Path:
    return REPO / ".deployment" / image


@dataclass
class Deployment:
    """A deployment's state, as saved in ``state.json``."""

    image: str
    ports: Ports
    secrets: Secrets
    #: Folders whose DAG files the deployment runs (``example_dags/``; ``deploy-test`` adds the drills' DAGs).
    dag_folders: tuple[str, ...] = (str(EXAMPLE_DAGS),)

    @property
    def root(self) -> Path:
        return state_dir(self.image)

    @property
    def pid_dir(self) -> Path:
        return self.root / "pids"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def dags_folder(self) -> Path:
        """``example_dags/`` itself, or a folder linking the files of every DAG folder when there are several."""
        if len(self.dag_folders) == 1:
            return Path(self.dag_folders[0])
        return self.root / "dags"

    def link_files(self, plugins: tuple[Path, ...] = ()) -> None:
        """Link the files of every DAG folder into :attr:`dags_folder` (when there are several), and ``plugins`` into
        ``AIRFLOW_HOME/plugins``.

        :param plugins: plugin modules.
        """
        links = [(self.home / "plugins", module) for module in plugins]
        if len(self.dag_folders) > 1:
            links += [
                (self.dags_folder, f) for folder in map(Path, self.dag_folders) for f in sorted(folder.glob("*.py"))
            ]
        for folder, target in links:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / target.name).symlink_to(target.resolve())

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.ui}"

    @property
    def bin_dir(self) -> Path:
        return Path(sys.executable).parent

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"image": self.image, "ports": asdict(self.ports), "secrets": asdict(self.secrets)}
        data["dag_folders"] = list(self.dag_folders)
        data["ui_url"] = self.ui_url
        data["database_url"] = f"postgresql://airflow@{LOOPBACK}:{self.ports.postgres}/airflow"
        data["emulator_url"] = f"http://{LOOPBACK}:{self.ports.emulator}"
        data["moto_url"] = f"http://{LOOPBACK}:{self.ports.moto}"
        data["bucket"] = BUCKET
        data["task_log_folder"] = str(self.home / "logs")
        data["airflow_version"] = self.image
        (self.root / "state.json").write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, image: str) -> Deployment | None:
        path = state_dir(image) / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        folders = tuple(data.get("dag_folders") or (str(EXAMPLE_DAGS),))
        return cls(image=image, ports=Ports(**data["ports"]), secrets=Secrets(**data["secrets"]), dag_folders=folders)

    @classmethod
    def new(cls, image: str, dag_folders: tuple[str, ...]) -> Deployment:
        ports = Ports(postgres=free_port(), redis=free_port(), emulator=free_port(), moto=free_port(), ui=free_port())
        keys = Secrets(
            fernet_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            jwt_secret=secrets.token_urlsafe(32),
            secret_key=secrets.token_urlsafe(32),
        )
        return cls(image=image, ports=ports, secrets=keys, dag_folders=dag_folders)

    def postgres(self) -> PostgresServer:
        return PostgresServer(root=self.root / "postgres", port=self.ports.postgres)

    def environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
        base["PATH"] = f"{self.bin_dir}{os.pathsep}{base.get('PATH', '')}"
        base[MARKER] = str(self.root)
        return base | airflow_environment(self.image, self.home, self.dags_folder, self.ports, self.secrets)

    def records(self) -> list[ProcessRecord]:
        return [ProcessRecord.load(p) for p in sorted(self.pid_dir.glob("*.pid"))]

    def record(self, name: str) -> ProcessRecord:
        """The process started as ``name`` (``triggerer-1``, ``worker-2``, ``scheduler`` ...).

        :param name: its name.
        """
        return ProcessRecord.load(self.pid_dir / f"{name}.pid")


def _say(text: str) -> None:
    print(text, flush=True)


def _run(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
    """A one-off command (migration, user creation), its output in ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv[1:])}` failed ({done.returncode}): see {log_dir / name}.log")


def up(
    image: str,
    extra_dag_folders: tuple[Path, ...] = (),
    plugins: tuple[Path, ...] = (),
    emulator_options: tuple[str, ...] = (),
) -> Deployment:
    """Start everything; on any failure stop what was started and raise.

    :param image: the MWAA image.
    :param extra_dag_folders: DAG folders to run beside ``example_dags/`` (their files are linked into one folder).
    :param plugins: modules every Airflow process must import (e.g. a benchmark's trigger), linked into
        ``AIRFLOW_HOME/plugins``.
    :param emulator_options: emulator options after :data:`EMULATOR_OPTIONS` (a later option wins).
    """
    existing = Deployment.load(image)
    if existing is not None and any(r.alive for r in existing.records()):
        raise RuntimeError(f"a deployment of {image} is running: stop it with `make deployment-down IMAGE={image}`")
    if existing is not None:  # a stopped one: start afresh (new keys, an empty metadata DB)
        down(image, quiet=True)
        shutil.rmtree(existing.postgres().home, ignore_errors=True)
    shutil.rmtree(state_dir(image), ignore_errors=True)
    dep = Deployment.new(image, (str(EXAMPLE_DAGS), *map(str, extra_dag_folders)))
    dep.save()
    dep.link_files(plugins)
    t0 = time.monotonic()
    try:
        _start(dep, emulator_options)
    except BaseException:
        _say(f"start-up failed; logs in {dep.log_dir}. Stopping what was started.")
        down(image)
        raise
    _say(f"\nMWAA-shaped Airflow {image} is up ({time.monotonic() - t0:.0f} s).")
    _say(f"  UI:      {dep.ui_url}   login: admin / admin")
    _say(f"  logs:    {dep.log_dir}  (task logs under {dep.home / 'logs'})")
    for line in emulator_settings(dep.ports, dt.datetime.now(dt.timezone.utc).date()):
        _say(f"  {line}")
    _say(f"  stop:    make deployment-down IMAGE={image}")
    return dep


def _start(dep: Deployment, emulator_options: tuple[str, ...]) -> None:
    env = dep.environment()
    pg = dep.postgres().start()
    pg.create_database("airflow")
    pg.create_database(EXPORTS_DATABASE)
    if pg.pid is not None:
        _record_pid("postgres", pg.pid, dep.pid_dir)
    _say(f"PostgreSQL on {LOOPBACK}:{dep.ports.postgres} (metadata DB, Celery result backend)")
    redis = RedisServer(root=dep.root / "redis", port=dep.ports.redis).start()
    assert redis.pid is not None
    _record_pid("redis", redis.pid, dep.pid_dir)
    _say(f"Redis on {LOOPBACK}:{dep.ports.redis} (Celery broker)")

    emulator = spawn(
        "emulator",
        [str(dep.bin_dir / "ses-export-emulator"), "--port", str(dep.ports.emulator), *EMULATOR_OPTIONS,
         *emulator_options, "--quiet"],
        env, dep.log_dir, dep.pid_dir,
    )  # fmt: skip
    moto = spawn(
        "moto", [str(dep.bin_dir / "moto_server"), "-H", LOOPBACK, "-p", str(dep.ports.moto)], env, dep.log_dir,
        dep.pid_dir,
    )  # fmt: skip
    wait_for_port(dep.ports.emulator, 60, emulator)
    wait_for_port(dep.ports.moto, 60, moto)
    _create_bucket(dep)
    _say(f"SES export emulator on {LOOPBACK}:{dep.ports.emulator}, moto S3 on {LOOPBACK}:{dep.ports.moto}")

    airflow = str(dep.bin_dir / "airflow")
    _run("db-migrate", [airflow, "db", "migrate"], env, dep.log_dir)
    _run(
        "users-create",
        [airflow, "users", "create", "--username", "admin", "--password", "admin", "--role", "Admin",
         "--firstname", "Admin", "--lastname", "User", "--email", "admin@example.com"],
        env, dep.log_dir,
    )  # fmt: skip
    _say("metadata DB migrated, user admin created")
    started = {name: spawn(name, argv, env, dep.log_dir, dep.pid_dir) for name, argv in airflow_processes(
        dep.image, airflow).items()}  # fmt: skip
    wait_for_port(dep.ports.ui, 240, started["ui"])
    _wait_healthy(dep, started)
    _say("Airflow: " + ", ".join(f"{name} (pid {r.pid})" for name, r in started.items()))


def _record_pid(name: str, pid: int, pid_dir: Path) -> None:
    ProcessRecord(name=name, pid=pid, started=process_start_time(pid), argv=[]).save(pid_dir)


def _create_bucket(dep: Deployment) -> None:
    """The destination bucket, created as a user creates theirs before deploying DAGs."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{LOOPBACK}:{dep.ports.moto}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)


def health(dep: Deployment) -> dict[str, Any]:
    path = "/api/v2/monitor/health" if airflow_3(dep.image) else "/health"
    with urllib.request.urlopen(dep.ui_url + path, timeout=10) as response:
        return dict(json.loads(response.read()))


def _wait_healthy(dep: Deployment, started: dict[str, ProcessRecord], timeout: float = 300) -> None:
    """Until the UI reports the scheduler, a triggerer and the DAG processor healthy; fail if any process died."""
    deadline = time.monotonic() + timeout
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        dead = [name for name, r in started.items() if not r.alive]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited during start-up: see {dep.log_dir}")
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            last = health(dep)
            if all(last.get(part, {}).get("status") == "healthy" for part in wanted if part in last):
                return
        time.sleep(1)
    raise TimeoutError(f"not healthy after {timeout} s: {last}")


def restart(dep: Deployment, name: str) -> ProcessRecord:
    """Start the Airflow process ``name`` again with its recorded command line (after a drill killed or stopped it).

    :param dep: the running deployment.
    :param name: its name (``triggerer-1``, ``worker-2``, ``scheduler`` ...).
    """
    record = dep.record(name)
    if record.alive:
        raise RuntimeError(f"{name} (pid {record.pid}) is still running")
    return spawn(name, record.argv, dep.environment(), dep.log_dir, dep.pid_dir)


def leftovers(dep: Deployment) -> list[int]:
    """Processes still carrying this deployment's marker in their environment."""
    needle = f"{MARKER}={dep.root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def down(image: str, quiet: bool = False) -> list[str]:
    """Stop every process the deployment recorded, by id, then its PostgreSQL; returns what was stopped."""
    dep = Deployment.load(image)
    if dep is None:
        if not quiet:
            _say(f"no deployment of {image} (no {state_dir(image) / 'state.json'})")
        return []
    by_name = {r.name: r for r in dep.records()}
    stopped = []
    for name in [n for n in STOP_ORDER if n in by_name] + [n for n in by_name if n not in STOP_ORDER]:
        record = by_name[name]
        if name == "postgres":
            continue
        if record.alive:
            record.stop()
            stopped.append(f"{name} ({record.pid})")
        (dep.pid_dir / f"{name}.pid").unlink(missing_ok=True)
    for pid in leftovers(dep):  # a descendant that started a session of its own
        ProcessRecord(name=f"leftover-{pid}", pid=pid, started=process_start_time(pid), argv=[]).stop(timeout=10)
        stopped.append(f"leftover ({pid})")
    pg = dep.postgres()
    if pg.pid is not None:
        stopped.append(f"postgres ({pg.pid})")
        pg.stop()
    (dep.pid_dir / "postgres.pid").unlink(missing_ok=True)
    remaining = [r.name for r in by_name.values() if r.alive] + [str(p) for p in leftovers(dep)]
    if remaining:
        raise RuntimeError(f"still running after stop: {remaining}")
    if not quiet:
        _say(f"stopped {len(stopped)} processes: {', '.join(stopped) or 'none was running'}")
    return stopped
