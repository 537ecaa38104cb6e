"""
SQL databases for the SQL transfer's tests: a throwaway PostgreSQL server per session (Debian's server,
127.0.0.1 only, stopped by its process id), a fresh database per test, and SQLite files.

Each fixture also sets the Airflow connection (``AIRFLOW_CONN_...``) that reaches it and yields a
:class:`SqlDb` to read rows back with the connection's own hook.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_CONN_ID = "ses_pg"
SQLITE_CONN_ID = "ses_sqlite"


@dataclass
class SqlDb:
    """A database reachable through the Airflow connection ``conn_id``."""

    conn_id: str
    kind: str  # "postgresql" or "sqlite"

    def hook(self) -> Any:
        from airflow_provider_sesexport._compat import get_connection

        return get_connection(self.conn_id).get_hook()

    def rows(self, table: str, columns: str = "*", order: str = "") -> list[tuple[Any, ...]]:
        sql = f"SELECT {columns} FROM {table}" + (f" ORDER BY {order}" if order else "")
        return [tuple(row) for row in self.hook().get_records(sql)]

    def run(self, sql: str) -> None:
        self.hook().run(sql)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL server of our own on 127.0.0.1 for the whole session (``deployment.services``)."""
    from deployment.services import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if server.home != server.root:  # the cluster lived in a /tmp twin the postgres user can reach
            shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> SqlDb:
    """A fresh database on the session's server and the connection ``ses_pg`` to it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": postgres_server.port, "login": "airflow"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{PG_CONN_ID.upper()}", json.dumps({**conn, "schema": name}))
    return SqlDb(PG_CONN_ID, "postgresql")


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlDb:
    """A fresh SQLite file and the connection ``ses_sqlite`` to it."""
    path = tmp_path / "exports.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQLITE_CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return SqlDb(SQLITE_CONN_ID, "sqlite")


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_db(request: pytest.FixtureRequest) -> SqlDb:
    """Each test twice: on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "postgres_db")
