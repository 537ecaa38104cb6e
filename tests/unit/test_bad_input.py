"""
Bad-input table: every public parameter of the operators, the sensor, the trigger and the hook, with the
invalid values a template or a user can produce, must fail with an error that names the parameter,
before any request leaves the process.

"No request" is enforced below the SDKs: urllib3 (boto3 / botocore and the pre-signed download) and
aiohttp (aiobotocore) refuse to send anything during these tests, and every attempt is recorded; the
test fails if any was made, even if the code under test swallowed the error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator, SesExportJobResultOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from airflow_provider_sesexport.triggers.export_slot import SesExportSlotTrigger
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from airflow_provider_sesexport.utils.validation import SesExportInputError

START = dt.datetime(2026, 10, 31, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(days=1)


class RequestSent(BaseException):
    """Raised by the guard; a BaseException so no SDK retry loop or ``except Exception`` can swallow it."""


@pytest.fixture(autouse=True)
def no_request(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse and record every HTTP request (sync: urllib3; async: aiohttp)."""
    import aiohttp
    import urllib3.connectionpool

    sent: list[str] = []

    def refuse(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(f"{method} {pool.host}{url.split('?')[0]}")
        raise RequestSent(f"a request was sent: {sent[-1]}")

    async def refuse_async(session: Any, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(f"{method} {str(url).split('?')[0]}")
        raise RequestSent(f"a request was sent: {sent[-1]}")

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", refuse)
    monkeypatch.setattr(aiohttp.ClientSession, "_request", refuse_async)
    return sent


def names(param: str, message: str) -> bool:
    """Whether ``message`` names ``param`` (``page_size`` also matches botocore's ``PageSize``)."""
    plain = re.sub(r"[^a-z0-9]", "", param.lower())
    return param in message or plain in re.sub(r"[^a-z0-9]", "", message.lower())


def context() -> dict[str, Any]:
    """A task context as much as these code paths read of it (a first try; no task_state_store)."""
    return {"ti": mock.MagicMock(try_number=1), "dag_run": mock.MagicMock(start_date=START)}


# -- the values a template or a user produces --------------------------------------------------------
#: job ids: missing XCom (None, "None", ""), whitespace, wrong types, a dict pushed by mistake.
BAD_JOB_IDS = [None, "", "   ", "None", "null", "\tjob-1", "job 1", 123, 1.5, True, ["job-1"], {"JobId": "x"}]


def metrics(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": START,
        "EndDate": END,
    }
    source.update(overrides)
    return {"MetricsDataSource": source}


def insights(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"StartDate": START, "EndDate": END, "MaxResults": 100}
    source.update(overrides)
    return {"MessageInsightsDataSource": source}


#: (export_data_source, the parameter path the error must name)
BAD_SOURCES: list[tuple[Any, str]] = [
    (None, "export_data_source"),
    ("", "export_data_source"),
    ("None", "export_data_source"),
    ('{"MetricsDataSource": {}}', "export_data_source"),  # a JSON string instead of a dict
    ([], "export_data_source"),
    ({}, "export_data_source"),  # neither data source
    ({**metrics(), **insights()}, "export_data_source"),  # both
    ({"MetricsDatasource": {}}, "export_data_source.MetricsDatasource"),  # typo
    ({"MetricsDataSource": "None"}, "export_data_source.MetricsDataSource"),
    (metrics(StartDate=None), "StartDate"),
    (metrics(StartDate="None"), "StartDate"),
    (metrics(StartDate=""), "StartDate"),
    (metrics(StartDate="yesterday"), "StartDate"),
    (metrics(EndDate="2026-13-01"), "EndDate"),
    (metrics(StartDate=END, EndDate=START), "EndDate"),  # reversed
    (metrics(StartDate=START.replace(tzinfo=None)), "StartDate"),  # naive datetime
    (metrics(EndDate="2026-11-01T00:00:00"), "EndDate"),  # naive ISO-8601 string
    (metrics(EndDate=START), "EndDate"),  # empty range
    (metrics(StartDate=12345), "StartDate"),
    (metrics(StartDate=START.replace(hour=6)), "StartDate"),  # metrics: midnight UTC only
    (metrics(EndDate="2026-11-01T00:00:00+01:00"), "EndDate"),  # a non-UTC midnight
    (metrics(Dimensions={"TENANT_NAME": ["t"]}, EndDate=START + dt.timedelta(hours=1)), "EndDate"),
    (metrics(Namespace="VDMX"), "Namespace"),  # unknown enum
    (metrics(Metrics=[{"Name": "OPENS", "Aggregation": "VOLUME"}]), "Metrics[0].Name"),
    (metrics(Metrics=[{"Name": "SEND", "Aggregation": "AVERAGE"}]), "Metrics[0].Aggregation"),
    (metrics(Metrics=[]), "Metrics"),
    (metrics(Metrics=[{"Name": "SEND", "Aggregation": "VOLUME"}] * 11), "Metrics"),
    (metrics(Metrics="SEND"), "Metrics"),
    (metrics(Dimensions={}), "Dimensions"),
    (  # too many dimensions (at most 3)
        metrics(Dimensions={"EMAIL_IDENTITY": ["a.com"], "CONFIGURATION_SET": ["c"], "ISP": ["gmail"], "X": ["y"]}),
        "Dimensions",
    ),
    (metrics(Dimensions={"COUNTRY": ["DE"]}), "Dimensions"),  # unknown dimension
    (metrics(Dimensions={"ISP": "gmail"}), "Dimensions"),  # values must be a list
    (insights(MaxResults=0), "MaxResults"),
    (insights(MaxResults=10001), "MaxResults"),
    (insights(MaxResults=-5), "MaxResults"),
    (insights(MaxResults="100"), "MaxResults"),
    (insights(StartDate="2026-11-01", EndDate="2026-10-01"), "EndDate"),
]

BAD_DATA_FORMATS = [None, "", "None", "csv", "XML", "PARQUET", 1, ["CSV"]]


def run_create(**kwargs: Any) -> Any:
    kwargs.setdefault("export_data_source", metrics())
    op = SesCreateExportJobOperator(task_id="create", **kwargs)
    return op.execute(context())


def run_sensor(job_id: Any, deferrable: bool = False, mode: str = "reschedule", **kwargs: Any) -> Any:
    if mode == "deferrable":
        mode, deferrable = "reschedule", True
    sensor = SesExportJobSensor(task_id="wait", job_id=job_id, deferrable=deferrable, mode=mode, timeout=60, **kwargs)
    return sensor.execute(context()) if deferrable else sensor.poke(context())


def run_result(job_id: Any) -> Any:
    return SesExportJobResultOperator(task_id="result", job_id=job_id).execute(context())


def run_copy(job_id: Any = "job-1", **kwargs: Any) -> Any:
    if not {"dest", "s3_bucket", "s3_key"} & set(kwargs):
        kwargs.update(s3_bucket="my-exports", s3_key="ses/vdm.csv")
    op = SesExportToS3Operator(task_id="copy", job_id=job_id, **kwargs)
    return op.execute(context())


def run_trigger(**kwargs: Any) -> Any:
    kwargs.setdefault("job_id", "job-1")
    trigger = SesExportJobTrigger(**kwargs)

    async def first() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(first(), 1))


def run_slot_trigger(**kwargs: Any) -> Any:
    kwargs = {
        "source_type": "METRICS_DATA",
        "started_at": START,
        "attempts": 1,
        "unfinished": 20,
        "slot_wait_timeout": 600,
        "max_pause": 30,
        **kwargs,
    }
    trigger = SesExportSlotTrigger(**kwargs)

    async def first() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(first(), 1))


def hook() -> SesExportJobHook:
    return SesExportJobHook(aws_conn_id=None, region_name="us-east-1")


ROWS: list[Any] = []
_bad: Any
_values: list[Any]


def bind(call: Callable[[Any], Any], value: Any) -> Callable[[], Any]:
    """``call`` with ``value`` bound (one row's bad value)."""
    return lambda: call(value)


def row(param: str, call: Callable[[], Any], id: str) -> None:
    ROWS.append(pytest.param(param, call, id=id))


for _i, _bad in enumerate(BAD_JOB_IDS):
    row("job_id", bind(lambda v: run_sensor(v), _bad), f"sensor.job_id[{_i}]")
    row("job_id", bind(lambda v: run_sensor(v, deferrable=True), _bad), f"sensor(deferrable).job_id[{_i}]")
    row("job_id", bind(lambda v: run_result(v), _bad), f"result.job_id[{_i}]")
    row("job_id", bind(lambda v: run_copy(v), _bad), f"copy.job_id[{_i}]")
    row("job_id", bind(lambda v: hook().get_export_job(v), _bad), f"hook.get_export_job.job_id[{_i}]")
    row("job_id", bind(lambda v: hook().cancel_export_job(v), _bad), f"hook.cancel_export_job.job_id[{_i}]")
    row("job_id", bind(lambda v: hook().wait_for_export_job(v), _bad), f"hook.wait_for_export_job.job_id[{_i}]")
    row("job_id", bind(lambda v: hook().get_export_download_url(v), _bad), f"hook.get_export_download_url.job_id[{_i}]")
for _i, _bad in enumerate([None, "", "None", "job 1", 123]):
    row("job_id", bind(lambda v: run_trigger(job_id=v), _bad), f"trigger.job_id[{_i}]")

for _i, (_bad, _param) in enumerate(BAD_SOURCES):
    row(_param, bind(lambda v: run_create(export_data_source=v), _bad), f"create.export_data_source[{_i}]")

for _i, _bad in enumerate(BAD_DATA_FORMATS):
    row("data_format", bind(lambda v: run_create(data_format=v), _bad), f"create.data_format[{_i}]")

#: Poll intervals below the floor of one second (one flooded SES for every wait sharing the triggerer's poller).
BELOW_FLOOR = [0, 0.0, 0.5, 0.999]
for _i, _bad in enumerate([-1, "30", None, True, float("nan"), *BELOW_FLOOR]):
    row("waiter_delay", bind(lambda v: run_create(waiter_delay=v), _bad), f"create.waiter_delay[{_i}]")
    row(
        "waiter_delay",
        bind(lambda v: run_create(waiter_delay=v, deferrable=True), _bad),
        f"create(deferrable).waiter_delay[{_i}]",
    )
for _i, _bad in enumerate([0, -3, 1.5, "120", None, True]):
    row(
        "waiter_max_attempts",
        bind(lambda v: run_create(waiter_max_attempts=v), _bad),
        f"create.waiter_max_attempts[{_i}]",
    )

# the copy operator's destination: both or neither form, invalid buckets and keys, rendered "None"s
_BAD_DEST: list[tuple[dict[str, Any], str]] = [
    ({"dest": "s3://my-exports/a.csv", "s3_bucket": "my-exports", "s3_key": "a.csv"}, "dest"),  # both
    ({"dest": None, "s3_bucket": None, "s3_key": None}, "s3_bucket"),  # neither
    ({"s3_bucket": "my-exports", "s3_key": None}, "s3_key"),
    ({"s3_bucket": None, "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "None", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "My_Bucket", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "ab", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "-exports", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "my..exports", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "192.168.1.10", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "s3://my-exports", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "x" * 64, "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": 42, "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "xn--exports", "s3_key": "a.csv"}, "s3_bucket"),  # names S3 reserves
    ({"s3_bucket": "sthree-exports", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "amzn-s3-demo-exports", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "exports-s3alias", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "exports--ol-s3", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "exports.mrap", "s3_key": "a.csv"}, "s3_bucket"),
    ({"s3_bucket": "exports--table-s3", "s3_key": "a.csv"}, "s3_bucket"),
    ({"dest": "s3://xn--exports/a.csv"}, "dest"),
    ({"dest": "s3://exports-s3alias/a.csv"}, "dest"),
    ({"s3_bucket": "my-exports", "s3_key": ""}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "   "}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "None"}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "/ses/a.csv"}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "ses/"}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "k" * 1025}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": "a\nb.csv"}, "s3_key"),
    ({"s3_bucket": "my-exports", "s3_key": ["a.csv"]}, "s3_key"),
    ({"dest": "https://my-exports.s3.amazonaws.com/a.csv"}, "dest"),
    ({"dest": "my-exports/a.csv"}, "dest"),
    ({"dest": "s3://My_Bucket/a.csv"}, "dest"),
    ({"dest": "s3://my-exports/"}, "dest"),
    ({"dest": "s3://my-exports/a.csv?versionId=1"}, "dest"),
    ({"dest": "None"}, "dest"),
    ({"dest": ""}, "dest"),
]
for _i, (_kwargs, _param) in enumerate(_BAD_DEST):
    row(_param, bind(lambda kw: run_copy(**kw), _kwargs), f"copy.destination[{_i}]")
for _name, _values in {
    "chunk_size": [0, -1, "1024", 1.5, None],
    "part_size": [1024, 0, "5242880", None],
    "max_concurrency": [0, -1, "4", None],
    "replace": ["yes", "False", 1, None],
    "gzip": ["no", 0, None],
}.items():
    for _i, _bad in enumerate(_values):
        row(_name, bind(lambda nv: run_copy(**{nv[0]: nv[1]}), (_name, _bad)), f"copy.{_name}[{_i}]")

# the sensor's own knobs (Airflow's BaseSensorOperator checks them when the DAG is parsed)
row("mode", lambda: SesExportJobSensor(task_id="w", job_id="j", mode="sometimes"), "sensor.mode[0]")
row("mode", lambda: SesExportJobSensor(task_id="w", job_id="j", mode=None), "sensor.mode[1]")  # type: ignore[arg-type]
for _i, _bad in enumerate([-1, *BELOW_FLOOR, dt.timedelta(milliseconds=200)]):
    for _mode in ("poke", "reschedule", "deferrable"):
        row(
            "poke_interval",
            bind(lambda vm: run_sensor("job-1", poke_interval=vm[0], mode=vm[1]), (_bad, _mode)),
            f"sensor({_mode}).poke_interval[{_i}]",
        )
row("timeout", lambda: SesExportJobSensor(task_id="w", job_id="j", timeout=-5), "sensor.timeout[0]")

# the trigger's own knobs
for _i, _bad in enumerate([-1, "soon", float("nan"), *BELOW_FLOOR]):
    row("poll_interval", bind(lambda v: run_trigger(poll_interval=v), _bad), f"trigger.poll_interval[{_i}]")
for _i, _bad in enumerate([-1, "soon", *BELOW_FLOOR]):
    row("max_pause", bind(lambda v: run_slot_trigger(max_pause=v), _bad), f"slot_trigger.max_pause[{_i}]")
for _i, _bad in enumerate(["tomorrow", 12]):
    row("timeout_at", bind(lambda v: run_trigger(timeout_at=v), _bad), f"trigger.timeout_at[{_i}]")

# the hook: ListExportJobs filters and page size, CreateExportJob arguments, waiter arguments
for _i, _bad in enumerate(["EVERYTHING", "metrics_data", "", 1]):
    row(
        "export_source_type",
        bind(lambda v: list(hook().list_export_jobs(export_source_type=v)), _bad),
        f"hook.list_export_jobs.export_source_type[{_i}]",
    )
for _i, _bad in enumerate(["DONE", "completed", "", 1]):
    row(
        "job_status",
        bind(lambda v: list(hook().list_export_jobs(job_status=v)), _bad),
        f"hook.list_export_jobs.job_status[{_i}]",
    )
# No maximum: the model and the API reference document none for ListExportJobs.PageSize.
for _i, _bad in enumerate([0, -1, "10", 2.5, True]):
    row(
        "page_size",
        bind(lambda v: list(hook().list_export_jobs(page_size=v)), _bad),
        f"hook.list_export_jobs.page_size[{_i}]",
    )
for _i, _bad in enumerate([None, "", {}, [], "None"]):
    row(
        "export_data_source",
        bind(lambda v: hook().create_export_job(v), _bad),
        f"hook.create_export_job.export_data_source[{_i}]",
    )
for _i, _bad in enumerate(["XML", "csv", None]):
    row(
        "data_format",
        bind(lambda v: hook().create_export_job(metrics(), v), _bad),
        f"hook.create_export_job.data_format[{_i}]",
    )
for _i, _bad in enumerate([-1, "30", None, *BELOW_FLOOR]):
    row(
        "waiter_delay",
        bind(lambda v: hook().wait_for_export_job("job-1", waiter_delay=v), _bad),
        f"hook.wait_for_export_job.waiter_delay[{_i}]",
    )
for _i, _bad in enumerate([0, "120", None]):
    row(
        "waiter_max_attempts",
        bind(lambda v: hook().wait_for_export_job("job-1", waiter_max_attempts=v), _bad),
        f"hook.wait_for_export_job.waiter_max_attempts[{_i}]",
    )


@pytest.mark.parametrize(("param", "call"), ROWS)
def test_bad_input_names_the_parameter_before_any_request(param: str, call: Callable[[], Any]) -> None:
    with pytest.raises(Exception) as err:
        call()
    message = str(err.value)
    assert names(param, message), f"the error does not name {param!r}: {type(err.value).__name__}: {message}"


def test_our_validation_errors_spend_no_retries() -> None:
    """Rejected input is an AirflowFailException: a retry would render the same value and fail the same way."""
    from airflow_provider_sesexport._compat import AirflowFailException

    assert issubclass(SesExportInputError, AirflowFailException)
    with pytest.raises(SesExportInputError):
        run_result("None")
    with pytest.raises(SesExportInputError):
        run_create(export_data_source=metrics(StartDate=END, EndDate=START))
