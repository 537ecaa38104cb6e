"""
What real SES refuses that botocore's model does not say (issue 10), caught by the provider before any request,
and the one refusal only SES can know about (VDM not enabled) turned into a typed error.

Facts (numbers as in docs/real_ses.md, "What SES really returns"): 1 no custom S3 URL, 4 metrics ranges midnight to
midnight UTC, 5 VDM not enabled, 13 ``MaxResults`` 1..10,000, 14 ``TENANT_NAME``/``TenantName`` on an older
botocore model.
Every "before any request" case runs with a Stubber that has no responses: a request would fail differently.
"""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowFailException
from airflow_provider_sesexport.exceptions import SesExportJobError, SesExportVdmNotEnabledError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.utils import aws_errors, model_validation
from airflow_provider_sesexport.utils.validation import SesExportInputError, build_create_export_job_request

START = dt.datetime(2026, 10, 31, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(days=1)
METRICS = "export_data_source.MetricsDataSource"
INSIGHTS = "export_data_source.MessageInsightsDataSource"
#: the start of real SES's answer on an account without VDM (fact 5)
VDM_MESSAGE = "To use this feature you must enable Virtual Deliverability Manager."
VDM_COMMAND = "aws sesv2 put-account-vdm-attributes --vdm-attributes VdmEnabled=ENABLED"


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
    source: dict[str, Any] = {"StartDate": START, "EndDate": END}
    source.update(overrides)
    return {"MessageInsightsDataSource": source}


class FakeTI:
    try_number = 1
    start_date = None

    def __init__(self) -> None:
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:  # pragma: no cover - nothing pushes on these paths
        raise AssertionError(f"unexpected XCom {key}")


def create_operator(hook: SesExportJobHook, source: dict[str, Any], **kwargs: Any) -> SesCreateExportJobOperator:
    op = SesCreateExportJobOperator(task_id="create", export_data_source=source, waiter_delay=1, **kwargs)
    op.__dict__["hook"] = hook
    return op


# -- fact 1: no custom S3 URL -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"ExportDestination": {"DataFormat": "CSV", "S3Url": "s3://my-bucket/ses/"}}, "ExportDestination"),
        ({"S3Url": "s3://my-bucket/ses/"}, "S3Url"),
    ],
)
def test_a_destination_in_the_data_source_is_refused_with_the_way_to_get_the_file(
    hook: SesExportJobHook, stubber: Stubber, extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(SesExportInputError) as err:
        create_operator(hook, {**metrics(), **extra}).execute({"ti": FakeTI()})
    message = str(err.value)
    assert message.startswith(f"Invalid export_data_source.{named}=")
    assert "Providing a custom S3 URL is not supported" in message and "SesExportToS3Operator" in message


def test_the_request_carries_only_the_data_format_as_destination() -> None:
    assert build_create_export_job_request(metrics(), "JSON")["ExportDestination"] == {"DataFormat": "JSON"}


# -- fact 4: metrics ranges go from midnight to midnight UTC ------------------------------------------------
@pytest.mark.parametrize(
    ("source", "named", "shown"),
    [
        (metrics(StartDate=START.replace(hour=6)), f"{METRICS}.StartDate", "2026-10-31T06:00:00+00:00"),
        (metrics(EndDate="2026-11-01T00:00:00.500Z"), f"{METRICS}.EndDate", "2026-11-01T00:00:00.500000+00:00"),
        # a daily schedule in another time zone: its midnight is 23:00 UTC
        (metrics(StartDate="2026-10-31T00:00:00+01:00"), f"{METRICS}.StartDate", "2026-10-30T23:00:00+00:00"),
        (metrics(EndDate=END + dt.timedelta(minutes=1)), f"{METRICS}.EndDate", "2026-11-01T00:01:00+00:00"),
    ],
)
def test_metrics_partial_days_fail_before_any_request(
    hook: SesExportJobHook, stubber: Stubber, source: dict[str, Any], named: str, shown: str
) -> None:
    with pytest.raises(SesExportInputError) as err:
        create_operator(hook, source).execute({"ti": FakeTI()})
    message = str(err.value)
    assert f"Invalid {named}='{shown}': expected midnight UTC" in message
    assert "'{{ data_interval_start }}' / '{{ data_interval_end }}'" in message
    assert ".replace(hour=0, minute=0, second=0, microsecond=0)" in message
    assert "partial-day timestamps" in message  # the words SES would have answered with
    with pytest.raises(SesExportInputError, match=named.replace(".", r"\.")):
        hook.create_export_job(source)


@pytest.mark.parametrize(
    "source",
    [
        metrics(StartDate="2026-10-31", EndDate="2026-11-01"),  # dates: midnight UTC
        metrics(StartDate="2026-10-31T01:00:00+01:00"),  # midnight UTC, written in another offset
        metrics(StartDate=dt.date(2026, 10, 1)),  # a month, end-exclusive
        insights(StartDate=START.replace(hour=6, minute=30), EndDate=START.replace(hour=7)),  # any time of day
    ],
)
def test_whole_utc_days_and_insights_ranges_at_any_time_are_accepted(source: dict[str, Any]) -> None:
    request = build_create_export_job_request(source, "CSV")
    (name,) = request["ExportDataSource"]
    assert request["ExportDataSource"][name]["StartDate"].tzinfo is not None


@pytest.mark.parametrize(
    ("source", "violation"),
    [
        ({"StartDate": START, "EndDate": END}, None),
        ({"StartDate": START.replace(tzinfo=None), "EndDate": END.replace(tzinfo=None)}, None),  # naive = UTC
        ({"StartDate": START.replace(second=1), "EndDate": END}, "StartDate"),
        ({"StartDate": START, "EndDate": END.replace(microsecond=1)}, "EndDate"),
        ({"StartDate": START.replace(hour=3), "EndDate": END.replace(hour=3)}, "StartDate"),  # the first one
        ({"StartDate": "2026-10-31", "EndDate": END}, None),  # not decoded: left to the other checks
    ],
)
def test_partial_day_violation_names_the_first_date_off_midnight(source: dict[str, Any], violation: str | None) -> None:
    found = model_validation.partial_day_violation(source, "ExportDataSource.MetricsDataSource")
    if violation is None:
        assert found is None
    else:
        assert found is not None
        assert found.path == f"ExportDataSource.MetricsDataSource.{violation}"
        assert found.value.utcoffset() == dt.timedelta(0)


# -- fact 13: MaxResults 1..10,000 ------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, 10_001, 1_000_000, "100", 2.5, True, None])
def test_max_results_out_of_range_names_the_limit_and_the_sampling(
    hook: SesExportJobHook, stubber: Stubber, value: Any
) -> None:
    with pytest.raises(SesExportInputError) as err:
        create_operator(hook, insights(MaxResults=value)).execute({"ti": FakeTI()})
    message = str(err.value)
    assert message.startswith(f"Invalid {INSIGHTS}.MaxResults={value!r}: expected an integer from 1 to 10,000")
    assert "random sample of 10,000" in message
    assert "split the range" in message


@pytest.mark.parametrize("value", [1, 100, 10_000])
def test_max_results_within_range_is_sent(hook: SesExportJobHook, stubber: Stubber, value: int) -> None:
    expected = {"ExportDataSource": insights(MaxResults=value), "ExportDestination": {"DataFormat": "JSON"}}
    stubber.add_response("create_export_job", {"JobId": "job-1"}, expected)
    assert hook.create_export_job(insights(MaxResults=value), "JSON") == "job-1"


# -- fact 14: names newer models added, on a model without them -------------------------------------------
def _source_shapes(data: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(shapes, dimension-name enum shape, Message Insights filters shape) of a loaded sesv2 model."""
    shapes = data["shapes"]
    metrics_shape = shapes[shapes["ExportDataSource"]["members"]["MetricsDataSource"]["shape"]]
    dimensions = shapes[metrics_shape["members"]["Dimensions"]["shape"]]
    insights_shape = shapes[shapes["ExportDataSource"]["members"]["MessageInsightsDataSource"]["shape"]]
    return shapes, dimensions["key"]["shape"], insights_shape["members"]["Include"]["shape"]


def _model(with_tenant: bool) -> Any:
    """The installed sesv2 model with TENANT_NAME / TenantName removed (as on botocore 1.35.36) or added."""
    import botocore.session
    from botocore.model import ServiceModel

    loader = botocore.session.get_session().get_component("data_loader")
    data = copy.deepcopy(loader.load_service_model("sesv2", "service-2"))
    shapes, dimension_names, filters = _source_shapes(data)
    enum = shapes[dimension_names]["enum"]
    members = shapes[filters]["members"]
    if with_tenant:
        if "TENANT_NAME" not in enum:
            enum.append("TENANT_NAME")
        members.setdefault("TenantName", dict(members["Isp"]))
    else:
        shapes[dimension_names]["enum"] = [name for name in enum if name != "TENANT_NAME"]
        members.pop("TenantName", None)
    return ServiceModel(data, service_name="sesv2")


@pytest.fixture(params=[False, True], ids=["old-model", "new-model"])
def model_has_tenant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    model = _model(request.param)
    monkeypatch.setattr(model_validation, "service_model", lambda: model)
    return bool(request.param)


@pytest.mark.parametrize(
    ("source", "named", "key"),
    [
        (metrics(Dimensions={"TENANT_NAME": ["tenant-a"]}), f"{METRICS}.Dimensions", "TENANT_NAME"),
        (metrics(Dimensions={"ISP": ["Gmail"], "TENANT_NAME": ["t"]}), f"{METRICS}.Dimensions", "TENANT_NAME"),
        (insights(Include={"TenantName": ["tenant-a"]}), f"{INSIGHTS}.Include", "TenantName"),
        (insights(Exclude={"Isp": ["Gmail"], "TenantName": ["t"]}), f"{INSIGHTS}.Exclude", "TenantName"),
    ],
)
def test_tenant_names_work_where_the_model_has_them_and_say_upgrade_where_not(
    model_has_tenant: bool, source: dict[str, Any], named: str, key: str
) -> None:
    import botocore

    if model_has_tenant:
        request = build_create_export_job_request(source, "CSV")
        assert request["ExportDataSource"] == source
        return
    with pytest.raises(SesExportInputError) as err:
        build_create_export_job_request(source, "CSV")
    message = str(err.value)
    assert message.startswith(f"Invalid {named}: {key!r} is not in the sesv2 model of the installed botocore")
    assert botocore.__version__ in message
    assert "Upgrade boto3 and botocore" in message
    assert "Unknown parameter" not in message and "one of EMAIL_IDENTITY" not in message  # not botocore's words


def test_tenant_name_on_the_installed_botocore() -> None:
    """Unpatched: accepted on a botocore that knows TENANT_NAME (the newest), the upgrade error on 1.35.36 (MWAA)."""
    dimensions = _source_shape_of_installed_model().members["Dimensions"].key.enum
    source = metrics(Dimensions={"TENANT_NAME": ["tenant-a"]})
    if "TENANT_NAME" in dimensions:
        assert build_create_export_job_request(source, "CSV")["ExportDataSource"] == source
    else:
        with pytest.raises(SesExportInputError, match="Upgrade boto3 and botocore"):
            build_create_export_job_request(source, "CSV")


def _source_shape_of_installed_model() -> Any:
    return (
        model_validation.operation_model("CreateExportJob")
        .input_shape.members["ExportDataSource"]
        .members["MetricsDataSource"]
    )


def test_other_unknown_dimensions_keep_the_models_error(model_has_tenant: bool) -> None:
    with pytest.raises(SesExportInputError, match=r"Dimensions key='COUNTRY': expected one of EMAIL_IDENTITY") as err:
        build_create_export_job_request(metrics(Dimensions={"COUNTRY": ["DE"]}), "CSV")
    assert "Upgrade" not in str(err.value)


# -- fact 5: VDM not enabled -------------------------------------------------------------------------------
def client_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "CreateExportJob",
    )


def test_vdm_not_enabled_is_a_typed_error_that_spends_no_retries() -> None:
    error = aws_errors.translate(
        client_error("BadRequestException", VDM_MESSAGE + " Go to the console."), region="eu-west-1"
    )
    assert isinstance(error, SesExportVdmNotEnabledError)
    assert isinstance(error, SesExportJobError) and isinstance(error, AirflowFailException)
    message = str(error)
    assert f"`{VDM_COMMAND} --region eu-west-1`" in message
    assert "SES console" in message and "in region eu-west-1" in message
    assert message.endswith("AWS said: " + VDM_MESSAGE + " Go to the console.")
    restored = pickle.loads(pickle.dumps(error))  # Airflow may ship it across processes
    assert type(restored) is SesExportVdmNotEnabledError and str(restored) == message


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("BadRequestException", VDM_MESSAGE, SesExportVdmNotEnabledError),
        ("BadRequestException", VDM_MESSAGE.upper(), SesExportVdmNotEnabledError),
        ("BadRequestException", "One data source must be provided", SesExportJobError),
        ("LimitExceededException", "There are too many <METRICS_DATA> export jobs running", ClientError),
        ("AccessDeniedException", VDM_MESSAGE, ClientError),  # only SES's 400 means it
    ],
)
def test_only_the_vdm_answer_becomes_the_vdm_error(code: str, message: str, expected: type) -> None:
    error = aws_errors.translate(client_error(code, message))
    assert type(error) is expected
    assert aws_errors.means_vdm_not_enabled(code, message) is (expected is SesExportVdmNotEnabledError)


def test_hook_create_raises_the_vdm_error_with_its_region(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("create_export_job", "BadRequestException", VDM_MESSAGE, 400)
    with pytest.raises(SesExportVdmNotEnabledError, match=f"{VDM_COMMAND} --region us-east-1"):
        hook.create_export_job(metrics())


@pytest.mark.parametrize("deferrable", [False, True])
def test_create_operator_fails_with_the_vdm_error(hook: SesExportJobHook, stubber: Stubber, deferrable: bool) -> None:
    stubber.add_client_error("create_export_job", "BadRequestException", VDM_MESSAGE, 400)
    op = create_operator(hook, metrics(), deferrable=deferrable)
    with pytest.raises(SesExportVdmNotEnabledError) as err:
        op.execute({"ti": FakeTI()})
    assert VDM_COMMAND in str(err.value)
    assert op.job_id is None  # no job exists: nothing for on_kill to cancel
