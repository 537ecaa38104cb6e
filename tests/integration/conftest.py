"""
Integration fixtures: moto's S3 in server mode on 127.0.0.1 (real HTTP), next to the SES export emulator.

``moto_server`` is one ThreadedMotoServer per session on a free loopback port; ``moto_s3`` gives a test
a fresh bucket and an Airflow connection (``AIRFLOW_CONN_MOTO_S3``) pointing at the server. The
emulator fixtures are the ``ses-export-emulator`` distribution's pytest plugin (installed by ``make venv``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.file_server import download_hook, file_server  # noqa: F401  (the download tests' HTTP file server)
from tests.sql_fixtures import postgres_db, postgres_server, sql_db, sqlite_db  # noqa: F401  (SQL databases)
from tests.unit.test_transfer_lineage import openlineage  # noqa: F401  (OpenLineage stand-ins)

MOTO_CONN_ID = "moto_s3"


@dataclass
class MotoS3:
    """A bucket on the session's moto server, and the Airflow connection that reaches it."""

    endpoint_url: str
    bucket: str
    conn_id: str = MOTO_CONN_ID

    def client(self) -> Any:
        """A boto3 S3 client on the moto server (dummy credentials)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def get(self, key: str, bucket: str | None = None) -> bytes:
        """The object's bytes."""
        return self.client().get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()

    def exists(self, key: str, bucket: str | None = None) -> bool:
        """Whether the object exists."""
        listing = self.client().list_objects_v2(Bucket=bucket or self.bucket, Prefix=key)
        return any(obj["Key"] == key for obj in listing.get("Contents", []))


def moto_conn_json(endpoint_url: str) -> str:
    """An Airflow AWS connection (JSON form, Airflow 2.10 and 3.x) pointing at a moto server."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint_url},
        }
    )


def start_moto_server() -> tuple[Any, str]:
    """Start a ThreadedMotoServer on a free 127.0.0.1 port; return ``(server, endpoint_url)``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    if hasattr(server, "get_host_and_port"):
        host, port = server.get_host_and_port()
    else:  # moto < 5.0.12
        host, port = "127.0.0.1", server._server.server_port
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 for the session; yields its endpoint URL."""
    server, endpoint_url = start_moto_server()
    try:
        yield endpoint_url
    finally:
        server.stop()


@pytest.fixture
def moto_s3(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """A fresh bucket on the moto server, reachable through the Airflow connection ``moto_s3``."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}", moto_conn_json(moto_server))
    s3 = MotoS3(endpoint_url=moto_server, bucket=f"exports-{uuid.uuid4().hex[:12]}")
    s3.client().create_bucket(Bucket=s3.bucket)
    return s3
