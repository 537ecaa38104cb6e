"""PostgreSQL and Redis servers of our own, on 127.0.0.1, each in a folder of the caller's.

Both are Debian's packages (``postgresql``, ``redis-server``), installed on first use when running as root (as CI
does). Each server is started as a child process and stopped by its process id, never by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def ensure_debian_package(package: str, binary: Path | str) -> None:
    """Install a Debian package unless ``binary`` already exists.

    :param package: the Debian package that provides ``binary``.
    :param binary: an absolute path, or a command name looked up on PATH.
    """
    if _exists(binary):
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"{binary} is missing: install it with `sudo apt-get install -y {package}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True, env=env)
    if not _exists(binary):
        raise RuntimeError(f"installing {package} did not provide {binary}")


def _exists(binary: Path | str) -> bool:
    path = Path(binary)
    return path.exists() if path.is_absolute() else shutil.which(str(binary)) is not None


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the newest installed PostgreSQL server, installing Debian's ``postgresql`` if none."""
    installed = _newest_postgres_bin()
    ensure_debian_package("postgresql", installed / "initdb" if installed else "/usr/lib/postgresql")
    found = _newest_postgres_bin()
    if found is None:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql after installing postgresql")
    return found


def _newest_postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def _stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process ``pid`` is gone when this returns."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster in ``root``, trust authentication, listening on 127.0.0.1 only.

    :param root: folder for the data directory, socket and log (created; reused if it holds a cluster).
    :param port: TCP port; a free one if not given.
    :param user: the superuser role the cluster is created with.
    """

    root: Path
    port: int = field(default_factory=free_port)
    user: str = "airflow"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.home = self.root if _owner_can_reach(self.root) else _reachable_twin(self.root)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs (read from its ``postmaster.pid``)."""
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(pid_file.read_text().splitlines()[0])
        return None

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL for ``database`` on this server."""
        return f"{driver}://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Create the cluster if needed and start it; returns once it accepts connections."""
        bin_dir = postgres_bin_dir()
        self.home.mkdir(parents=True, exist_ok=True)
        as_owner = self._as_owner()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._chown(self.home)
            subprocess.run(
                [*as_owner, str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        self._chown(self.home)
        options = f"-h {LOOPBACK} -p {self.port} -k {self.home} -c fsync=off -c max_connections=300"
        subprocess.run(
            [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
             "-w", "-t", str(int(timeout)), "start"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, timeout)
        return self

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists."""
        psql = [str(postgres_bin_dir() / "psql"), "-h", LOOPBACK, "-p", str(self.port), "-U", self.user]
        exists = subprocess.run(
            [*psql, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "-d", "postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)

    def stop(self) -> None:
        """Stop the postmaster by its process id (a fast shutdown), if it runs."""
        pid = self.pid
        if pid is not None:
            _stop_pid(pid)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _as_owner(self) -> list[str]:
        # PostgreSQL refuses to run as root; CI runs as root, so the server runs as Debian's postgres user.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
            for child in path.rglob("*"):
                with contextlib.suppress(FileNotFoundError):
                    shutil.chown(child, "postgres", "postgres")


def _owner_can_reach(path: Path) -> bool:
    """Can Debian's postgres user (the server's owner when we run as root) get into ``path``'s parent?"""
    if os.geteuid() != 0:
        return True
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path.parent)]).returncode == 0


def _reachable_twin(path: Path) -> Path:
    # A clone in a private temporary folder (mktemp -d is mode 700): the cluster lives in /tmp instead, one per root.
    twin = Path("/tmp") / f"sesexport-pg-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    twin.mkdir(mode=0o700, exist_ok=True)
    return twin


@dataclass
class RedisServer:
    """A Redis server in ``root`` on 127.0.0.1, no persistence.

    :param root: its working folder and log.
    :param port: TCP port; a free one if not given.
    """

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 30.0) -> RedisServer:
        ensure_debian_package("redis-server", "/usr/bin/redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            ["/usr/bin/redis-server", "--bind", LOOPBACK, "--port", str(self.port), "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        _wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _stop_pid(self.process.pid)
            self.process.wait(timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- any other server or Airflow process: started in a session of its own, recorded in a pid file -----------------
@dataclass
class ProcessRecord:
    """One process the deployment started: its name, id and kernel start time (so a reused id is never signalled).

    :param name: the name of its pid file and log (``scheduler``, ``worker-1`` ...).
    :param pid: the process id; it leads a session and process group of its own.
    :param started: its start time in clock ticks since boot (``/proc/<pid>/stat`` field 22).
    :param argv: the command line it was started with.
    """

    name: str
    pid: int
    started: int
    argv: list[str]

    def save(self, pid_dir: Path) -> Path:
        pid_dir.mkdir(parents=True, exist_ok=True)
        path = pid_dir / f"{self.name}.pid"
        path.write_text(json.dumps({"pid": self.pid, "started": self.started, "argv": self.argv}) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> ProcessRecord:
        data = json.loads(path.read_text())
        return cls(name=path.stem, pid=int(data["pid"]), started=int(data["started"]), argv=list(data["argv"]))

    @property
    def alive(self) -> bool:
        """Whether the very process recorded here still runs (same id and start time, not a zombie)."""
        stat = _proc_stat(self.pid)
        return stat is not None and stat[0] == self.started and stat[1] != "Z"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to its process group, then SIGKILL to whatever of the group is left after ``timeout``."""
        if not self.alive:
            return
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.alive or _group_members(self.pid)):
            time.sleep(0.2)
        if self.alive or _group_members(self.pid):
            _signal_group(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (self.alive or _group_members(self.pid)):
                time.sleep(0.1)

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL to every process of its session (a machine losing it at once, no clean-up; Airflow's task
        processes lead process groups of their own inside it), until all of them are gone."""
        deadline = time.monotonic() + timeout
        while members := _session_members(self.pid):
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} (session {self.pid}) survived SIGKILL for {timeout} s: {members}")
            time.sleep(0.1)


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path, pid_dir: Path) -> ProcessRecord:
    """Start ``argv`` in a new session, output to ``log_dir/<name>.log``, and record it in ``pid_dir/<name>.pid``.

    :param name: the process's name in the deployment.
    :param argv: the command line.
    :param env: its whole environment.
    :param log_dir: folder of its log file.
    :param pid_dir: folder of its pid file.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    record = ProcessRecord(name=name, pid=process.pid, started=process_start_time(process.pid), argv=argv)
    record.save(pid_dir)
    return record


def wait_for_port(port: int, timeout: float, record: ProcessRecord | None = None) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; fail early if ``record``'s process died.

    :param port: the TCP port.
    :param timeout: seconds to wait at most.
    :param record: the process expected to listen there.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record is not None and not record.alive:
            raise RuntimeError(f"{record.name} exited before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def process_start_time(pid: int) -> int:
    """The start time (clock ticks since boot) of process ``pid``; 0 if it does not exist."""
    stat = _proc_stat(pid)
    return stat[0] if stat else 0


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after ``pid (comm)`` (state, ppid, pgrp, session, ...), or None if there
    is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(start time in ticks, state letter) of process ``pid``, or None if there is none."""
    fields = _stat_fields(pid)
    return (int(fields[19]), fields[0]) if fields else None


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields) of every live (non-zombie) process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) and fields[0] != "Z":
            yield int(entry.name), fields


def parent_pid(pid: int) -> int | None:
    """The parent of process ``pid`` (None if there is no such process).

    :param pid: the process.
    """
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...).

    :param pid: the root process.
    """
    children: dict[int, list[int]] = {}
    for child, fields in _live_processes():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], list(children.get(pid, ()))
    while todo:
        found.append(current := todo.pop())
        todo.extend(children.get(current, ()))
    return found


def _group_members(pgid: int, field: int = 2) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` (``field`` 3: in session ``pgid``)."""
    return [pid for pid, fields in _live_processes() if int(fields[field]) == pgid]


def _session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes in session ``sid``."""
    return _group_members(sid, field=3)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """``sig`` to the process group ``pid`` leads, or to ``pid`` alone if it leads none."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid or _group_members(pid):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
