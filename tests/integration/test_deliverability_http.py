"""
SesDeliverabilityCheckOperator against the emulator: boto3 over HTTP, the export file downloaded and read for real,
with a day's volumes per email identity set through the emulator's ``set_volumes`` control.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from airflow_provider_sesexport._compat import AirflowSkipException
from airflow_provider_sesexport.exceptions import (
    SesDeliverabilityBreachError,
    SesExportInputError,
    SesExportJobError,
)
from airflow_provider_sesexport.operators.ses_deliverability import SesDeliverabilityCheckOperator
from ses_export_emulator import SesExportEmulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.ses_export_emulator(conn_id="ses_emu", create_rate_limit=None, time_scale=1.0),
]
DAY = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
VOLUMES = [
    {"Name": "SEND", "Aggregation": "VOLUME"},
    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"},
    {"Name": "COMPLAINT", "Aggregation": "VOLUME"},
]
RATES = [{"Name": "PERMANENT_BOUNCE", "Aggregation": "RATE"}, {"Name": "COMPLAINT", "Aggregation": "RATE"}]
IDENTITIES = ["example.com", "example.org", "news@example.com"]


class RecordingTI:
    """Stands in for the task instance: records XCom pushes."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def make_job(
    emu: SesExportEmulator, metrics: list[dict[str, str]] = VOLUMES, data_format: str = "CSV", complete: bool = True
) -> str:
    """A one-day metrics export per email identity, completed at once."""
    job_id = emu.client().create_export_job(
        ExportDataSource={
            "MetricsDataSource": {
                "Dimensions": {"EMAIL_IDENTITY": IDENTITIES},
                "Namespace": "VDM",
                "Metrics": metrics,
                "StartDate": DAY,
                "EndDate": DAY + dt.timedelta(days=1),
            }
        },
        ExportDestination={"DataFormat": data_format},
    )["JobId"]
    if complete:
        emu.complete_job(job_id)
    return job_id


def healthy_day(emu: SesExportEmulator) -> None:
    for identity in IDENTITIES:
        emu.set_volumes(identity, DAY.date().isoformat(), 5000, permanent_bounce=50, complaint=1)


def check(job_id: str, ti: RecordingTI | None = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    op = SesDeliverabilityCheckOperator(task_id="check", job_id=job_id, aws_conn_id="ses_emu", **kwargs)
    ti = ti or RecordingTI()
    return op.execute({"ti": ti}), ti.xcom  # type: ignore[arg-type]


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
def test_healthy_day(ses_export_emulator: SesExportEmulator, data_format: str) -> None:
    healthy_day(ses_export_emulator)
    report, _ = check(make_job(ses_export_emulator, data_format=data_format))
    assert report["healthy"] is True and report["breaches"] == []
    assert report["overall"] == {"send_volume": 15000.0, "bounce_rate": 0.01, "complaint_rate": 0.0002}
    assert sorted(g["group"]["EMAIL_IDENTITY"] for g in report["groups"]) == sorted(IDENTITIES)
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
def test_breaching_day_fails_with_every_breach(
    ses_export_emulator: SesExportEmulator, data_format: str, capfd: pytest.CaptureFixture[str]
) -> None:
    healthy_day(ses_export_emulator)
    day = DAY.date().isoformat()
    ses_export_emulator.set_volumes("example.org", day, 2000, permanent_bounce=120, complaint=1)  # 6% bounce
    ses_export_emulator.set_volumes("news@example.com", day, 4000, permanent_bounce=8, complaint=6)  # 0.15%
    job_id = make_job(ses_export_emulator, data_format=data_format)
    with pytest.raises(SesDeliverabilityBreachError) as err:
        check(job_id)
    message = str(err.value)
    print(message)
    assert "EMAIL_IDENTITY=example.org: bounce rate 6.00% >= 5.00% (send volume 2,000)" in message
    assert "EMAIL_IDENTITY=news@example.com: complaint rate 0.15% >= 0.10% (send volume 4,000)" in message
    assert "example.com:" not in message.replace("news@example.com", "")
    # the download URL is a bearer credential: never in what the task logged or raised
    logged = capfd.readouterr().out
    assert "SES export job" in logged
    secrets = ses_export_emulator.issued_secrets()
    assert secrets
    for secret in secrets:
        assert secret not in logged + message


def test_skip_and_warn(ses_export_emulator: SesExportEmulator) -> None:
    ses_export_emulator.set_volumes("example.com", DAY.date().isoformat(), 1000, permanent_bounce=50)
    job_id = make_job(ses_export_emulator)
    ti = RecordingTI()
    with pytest.raises(AirflowSkipException):
        check(job_id, ti, on_breach="skip", max_complaint_rate=None)
    assert ti.xcom["return_value"]["breaches_total"] == 1
    report, _ = check(job_id, on_breach="warn", max_complaint_rate=None)
    assert report["healthy"] is False
    example = {"group": {"EMAIL_IDENTITY": "example.com"}, "metric": "bounce", "rate": 0.05, "threshold": 0.05}
    assert {**example, "send_volume": 1000.0} in report["breaches"]


def test_rate_metrics(ses_export_emulator: SesExportEmulator) -> None:
    ses_export_emulator.set_volumes("example.com", DAY.date().isoformat(), 1000, permanent_bounce=70)
    report, _ = check(make_job(ses_export_emulator, RATES), on_breach="warn", max_complaint_rate=None)
    assert report["rates_from"] == {"bounce": "RATE"}
    assert report["overall"]["send_volume"] is None
    assert [(b["group"], b["metric"], b["rate"]) for b in report["breaches"]] == [
        ({"EMAIL_IDENTITY": "example.com"}, "bounce", 0.07)
    ]


def test_refusals_before_the_file_is_read(ses_export_emulator: SesExportEmulator) -> None:
    stats = ses_export_emulator.stats
    job_id = make_job(ses_export_emulator, [VOLUMES[0]])
    ses_export_emulator.reset_stats()
    with pytest.raises(
        SesExportInputError, match=r'max_bounce_rate needs \{"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"\}'
    ):
        check(job_id)
    assert stats()["downloads"]["requests"] == 0
    unfinished = make_job(ses_export_emulator, complete=False)
    with pytest.raises(SesExportJobError, match="has not finished"):
        check(unfinished)
    assert stats()["downloads"]["requests"] == 0


def test_more_bounces_than_sends_in_a_small_group_is_reported_not_refused(
    ses_export_emulator: SesExportEmulator,
) -> None:
    """A day's bounces of the day before's sends: 30 bounces of 10 sends is a 300% rate, under min_send_volume."""
    healthy_day(ses_export_emulator)
    ses_export_emulator.set_volumes("example.com", DAY.date().isoformat(), 10, permanent_bounce=30)
    report, _ = check(make_job(ses_export_emulator))
    small = next(g for g in report["groups"] if g["group"] == {"EMAIL_IDENTITY": "example.com"})
    assert small["bounce_rate"] == 3.0 and small["checked"] is False and small["breach"] is False
    assert report["overall"]["bounce_rate"] == pytest.approx((30 + 50 + 50) / 10010)
    assert report["healthy"]
