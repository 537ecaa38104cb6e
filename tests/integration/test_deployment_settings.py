"""What ``make deployment`` prints for creating an export job is enough to create one against its emulator."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from typing import Any

import boto3
import pytest

from deployment.airflow_settings import Ports, emulator_settings

pytestmark = pytest.mark.integration


def test_printed_settings_create_a_job_on_the_emulator(ses_export_emulator: Any) -> None:
    port = int(ses_export_emulator.endpoint_url.rsplit(":", 1)[1])
    today = dt.date(2026, 11, 2)
    lines = emulator_settings(Ports(postgres=1, redis=2, emulator=port, moto=3, ui=4), today)
    text = "\n".join(lines)

    endpoint = re.search(r"endpoint: +(\S+)", text)
    region = re.search(r"region: +(\S+)", text)
    keys = re.search(r"credentials: access key (\S+), secret key (\S+)", text)
    assert endpoint and region and keys, text
    assert endpoint.group(1) == ses_export_emulator.endpoint_url
    # the printed command, taken apart as a shell would, with the values it names
    (command,) = [line.strip() for line in lines if " aws sesv2 create-export-job " in line]
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words[: words.index("aws")])
    assert env == {"AWS_ACCESS_KEY_ID": keys.group(1), "AWS_SECRET_ACCESS_KEY": keys.group(2)}
    rest = words[words.index("create-export-job") + 1 :]
    options = dict(zip(rest[::2], rest[1::2], strict=True))
    assert options["--endpoint-url"] == endpoint.group(1) and options["--region"] == region.group(1)
    assert options["--export-destination"] == "DataFormat=CSV"

    client = boto3.client(
        "sesv2",
        endpoint_url=options["--endpoint-url"],
        region_name=options["--region"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    source = json.loads(options["--export-data-source"])
    job_id = client.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": "CSV"})["JobId"]

    # the example export is the day before `today`, midnight to midnight UTC (as SES requires)
    created = ses_export_emulator.client().get_export_job(JobId=job_id)["ExportDataSource"]["MetricsDataSource"]
    utc = dt.timezone.utc
    assert (created["StartDate"], created["EndDate"]) == (
        dt.datetime(2026, 11, 1, tzinfo=utc),
        dt.datetime(2026, 11, 2, tzinfo=utc),
    )
