"""SesDeliverabilityCheckOperator and its rate rule (utils/deliverability.py): math, bad input, on_breach, XCom."""

from __future__ import annotations

import json
import math
from typing import Any
from unittest import mock

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowFailException, AirflowSkipException
from airflow_provider_sesexport.exceptions import (
    SesDeliverabilityBreachError,
    SesExportInputError,
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportRecordsError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators.ses_deliverability import SesDeliverabilityCheckOperator
from airflow_provider_sesexport.records import iter_records
from airflow_provider_sesexport.utils.deliverability import RateSource, Thresholds, check_rates, rate_source
from tests.unit.responses import PRESIGNED, job_response

VOLUMES = [
    {"Name": "SEND", "Aggregation": "VOLUME"},
    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"},
    {"Name": "COMPLAINT", "Aggregation": "VOLUME"},
]
RATES = [{"Name": "PERMANENT_BOUNCE", "Aggregation": "RATE"}, {"Name": "COMPLAINT", "Aggregation": "RATE"}]
BOTH = VOLUMES + RATES
DEFAULT = Thresholds({"bounce": 0.05, "complaint": 0.001}, 100)


def row(identity: str, send: Any = None, bounce: Any = None, complaint: Any = None, **extra: Any) -> dict[str, Any]:
    """A metrics CSV record (as iter_records yields it) of one email identity."""
    record: dict[str, Any] = {"EMAIL_IDENTITY": identity}
    if send is not None:
        record["SEND_VOLUME"] = send
    if bounce is not None:
        record["PERMANENT_BOUNCE_VOLUME"] = bounce
    if complaint is not None:
        record["COMPLAINT_VOLUME"] = complaint
    record.update(extra)
    return record


def check(
    records: list[dict[str, Any]], metrics: list[dict[str, str]] = VOLUMES, thresholds: Thresholds = DEFAULT
) -> dict[str, Any]:
    report, breaches = check_rates(records, rate_source(metrics, thresholds.checks), thresholds)
    assert breaches[: len(report["breaches"])] == report["breaches"]  # the report lists the first of every breach
    return report


# -- the rate math ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("send", "bounce", "complaint", "breached"),
    [
        (1000, 49, 0, []),  # 4.9%
        (1000, 50, 0, ["bounce"]),  # exactly 5%: equal is a breach
        (1000, 0, 1, ["complaint"]),  # exactly 0.1%
        (1000, 0, 0.9, []),
        (1000, 100, 5, ["bounce", "complaint"]),
    ],
)
def test_volume_rates_and_equal_threshold(send: float, bounce: float, complaint: float, breached: list[str]) -> None:
    report = check([row("a.com", send, bounce, complaint)])
    assert [b["metric"] for b in report["breaches"] if b["group"]] == breached
    group = report["groups"][0]
    assert group["bounce_rate"] == pytest.approx(bounce / send)
    assert group["complaint_rate"] == pytest.approx(complaint / send)
    assert report["healthy"] is (not breached)


def test_volume_preferred_over_rate_metrics() -> None:
    # the RATE columns say 90%, the volumes 1%: volumes win when SEND VOLUME is there
    records = [row("a.com", 1000, 10, 0, PERMANENT_BOUNCE_RATE=0.9, COMPLAINT_RATE=0.9)]
    report = check(records, BOTH)
    assert report["rates_from"] == {"bounce": "VOLUME", "complaint": "VOLUME"}
    assert report["groups"][0]["bounce_rate"] == pytest.approx(0.01)
    assert report["healthy"]


def test_rate_metrics_without_send_volume_check_every_row() -> None:
    records = [
        row("a.com", PERMANENT_BOUNCE_RATE=0.06, COMPLAINT_RATE=0.0),
        row("b.com", PERMANENT_BOUNCE_RATE=0.01, COMPLAINT_RATE=0.0),
    ]
    report = check(records, RATES)
    assert report["rates_from"] == {"bounce": "RATE", "complaint": "RATE"}
    assert [b["group"] for b in report["breaches"]] == [{"EMAIL_IDENTITY": "a.com"}]
    assert report["breaches"][0]["send_volume"] is None
    assert report["overall"] == {"send_volume": None, "bounce_rate": None, "complaint_rate": None}
    assert all(g["checked"] for g in report["groups"])


def test_rate_metrics_with_send_volume_weight_the_overall() -> None:
    metrics = [{"Name": "SEND", "Aggregation": "VOLUME"}, *RATES]
    records = [
        row("a.com", 1000, PERMANENT_BOUNCE_RATE=0.01, COMPLAINT_RATE=0.0),
        row("b.com", 3000, PERMANENT_BOUNCE_RATE=0.03, COMPLAINT_RATE=0.0),
    ]
    report = check(records, metrics)
    assert report["overall"]["bounce_rate"] == pytest.approx((10 + 90) / 4000)


def test_overall_is_send_weighted_small_groups_included() -> None:
    # the 10-message group (50% bounce) is under min_send_volume: reported, not a breach, but counted overall
    records = [row("big.com", 990, 9, 0), row("test.com", 10, 5, 0)]
    report = check(records)
    small = next(g for g in report["groups"] if g["group"] == {"EMAIL_IDENTITY": "test.com"})
    assert small["bounce_rate"] == 0.5 and small["checked"] is False and small["breach"] is False
    assert report["overall"] == {"send_volume": 1000.0, "bounce_rate": pytest.approx(0.014), "complaint_rate": 0.0}
    assert report["healthy"]


def test_overall_breach_has_an_empty_group_and_comes_first() -> None:
    records = [row(f"{i}.com", 99, 6, 0) for i in range(10)]  # each under min_send_volume, 990 together
    report = check(records)
    assert report["breaches"] == [
        {"group": {}, "metric": "bounce", "rate": pytest.approx(6 / 99), "threshold": 0.05, "send_volume": 990.0}
    ]


def test_min_send_volume_boundary() -> None:
    assert check([row("a.com", 100, 5, 0)])["breaches"][0]["send_volume"] == 100
    assert check([row("a.com", 99, 5, 0)])["healthy"]
    zero = Thresholds({"bounce": 0.05, "complaint": 0.001}, 0)
    assert not check([row("a.com", 1, 1, 0)], thresholds=zero)["healthy"]


@pytest.mark.parametrize(
    ("metrics", "zero"),
    [
        (VOLUMES, row("a.com", 0, 7, 0)),  # bounces of the day before: no sends, no rate
        ([VOLUMES[0], *RATES], row("a.com", 0, PERMANENT_BOUNCE_RATE=0.3, COMPLAINT_RATE=0.2)),
    ],
)
def test_zero_send_volume_has_no_rate_and_never_breaches(metrics: Any, zero: dict[str, Any]) -> None:
    no_minimum = Thresholds({"bounce": 0.05, "complaint": 0.001}, 0)  # min_send_volume cannot be what saves it
    report = check([zero], metrics, no_minimum)
    (group,) = report["groups"]
    assert group["bounce_rate"] is None and group["complaint_rate"] is None and group["breach"] is False
    assert report["overall"] == {"send_volume": 0.0, "bounce_rate": None, "complaint_rate": None}
    assert report["healthy"]


def test_none_threshold_skips_the_check() -> None:
    only_bounce = Thresholds({"bounce": 0.05, "complaint": None}, 100)
    report = check([row("a.com", 1000, 0, 500)], [VOLUMES[0], VOLUMES[1]], only_bounce)
    assert report["healthy"] and report["groups"][0]["complaint_rate"] is None
    assert report["thresholds"]["max_complaint_rate"] is None


SEND_AND_RATES = [VOLUMES[0], *RATES]


@pytest.mark.parametrize(
    ("record", "metrics", "match"),
    [
        (
            row("a.com", 1000, math.nan, 0),
            VOLUMES,
            r"row 2 \(EMAIL_IDENTITY=a.com\): PERMANENT_BOUNCE_VOLUME is nan",
        ),
        (row("a.com", -1, 0, 0), VOLUMES, r"row 2 .*: SEND_VOLUME is -1.0 \(expected a number >= 0\)"),
        (row("a.com", 1000, math.inf, 0), VOLUMES, "PERMANENT_BOUNCE_VOLUME is inf"),
        (row("a.com", PERMANENT_BOUNCE_RATE=1.5, COMPLAINT_RATE=0.0), RATES, "PERMANENT_BOUNCE_RATE is 1.5 .*above 1"),
        (row("a.com", PERMANENT_BOUNCE_RATE=0.0, COMPLAINT_RATE=math.nan), RATES, "row 2 .*: COMPLAINT_RATE is nan"),
        (row("a.com", PERMANENT_BOUNCE_RATE=-0.1, COMPLAINT_RATE=0.0), RATES, "PERMANENT_BOUNCE_RATE is -0.1"),
        # an empty volume cell: a count the file must have
        (
            row("a.com", 1000, COMPLAINT_VOLUME=0, PERMANENT_BOUNCE_VOLUME=None),
            VOLUMES,
            "PERMANENT_BOUNCE_VOLUME is empty",
        ),
        (row("a.com", None, 5, 0, SEND_VOLUME=None), VOLUMES, "SEND_VOLUME is empty"),
        # an export with SEND VOLUME and RATE metrics: an empty SEND is not "no send volume in the export"
        (
            row("a.com", SEND_VOLUME=None, PERMANENT_BOUNCE_RATE=0.5, COMPLAINT_RATE=0.0),
            SEND_AND_RATES,
            "SEND_VOLUME is empty",
        ),
        # a row that sent messages has a rate
        (
            row("a.com", 1000, PERMANENT_BOUNCE_RATE=None, COMPLAINT_RATE=0.0),
            SEND_AND_RATES,
            "PERMANENT_BOUNCE_RATE is empty although 1,000 messages",
        ),
        # a column the job's Metrics ask for is missing from the file
        (row("a.com", 1000, 5), VOLUMES, r"no COMPLAINT_VOLUME column \(row 2 \(EMAIL_IDENTITY=a.com\)\)"),
        (row("a.com", PERMANENT_BOUNCE_RATE=0.0), RATES, "no COMPLAINT_RATE column"),
        # one dimension combination twice
        (
            row("ok.com", 60, 30, 0),
            VOLUMES,
            r"row 2 \(EMAIL_IDENTITY=ok.com\): the dimension combination of an earlier row again",
        ),
    ],
)
def test_invalid_data_is_an_error_naming_the_row(record: dict[str, Any], metrics: Any, match: str) -> None:
    first = row("ok.com", 1000, 1, 0, PERMANENT_BOUNCE_RATE=0.001, COMPLAINT_RATE=0.0)
    with pytest.raises(SesExportRecordsError, match=match):
        check([first, record], metrics)


def test_a_volume_ratio_above_one_is_reported_not_refused() -> None:
    """More bounces than sends in a day (bounces of the day before): a true ratio, not invalid data."""
    report = check([row("a.com", 200, 300, 0), row("b.com", 10, 20, 0)])
    assert report["groups"][0]["bounce_rate"] == 1.5 and report["groups"][0]["breach"] is True
    small = report["groups"][1]
    assert small["bounce_rate"] == 2.0 and small["checked"] is False and small["breach"] is False


def test_overall_counts_the_bounces_of_rows_that_sent_nothing() -> None:
    report = check([row("a.com", 0, 500, 0), row("b.com", 1000, 10, 0)])
    assert report["overall"]["bounce_rate"] == pytest.approx(0.51)
    assert report["breaches"][0]["group"] == {} and not report["healthy"]
    assert report["groups"][1]["bounce_rate"] is None  # a.com: no sends, no rate, never a breach


def test_a_send_weighted_rate_at_the_threshold_is_a_breach_despite_rounding() -> None:
    # 0.05 x 2 + 0.05 x 99 over 101 is 0.049999999999999996 in plain float arithmetic
    records = [
        row("a.com", 2, PERMANENT_BOUNCE_RATE=0.05, COMPLAINT_RATE=0.0),
        row("b.com", 99, PERMANENT_BOUNCE_RATE=0.05, COMPLAINT_RATE=0.0),
    ]
    report = check(records, SEND_AND_RATES)
    assert report["overall"]["bounce_rate"] == pytest.approx(0.05)
    assert [(b["group"], b["metric"]) for b in report["breaches"]] == [({}, "bounce")]


def test_rate_rows_that_sent_nothing_may_leave_the_rate_empty() -> None:
    records = [
        row("a.com", 0, PERMANENT_BOUNCE_RATE=None, COMPLAINT_RATE=None),
        row("b.com", 100, PERMANENT_BOUNCE_RATE=0.01, COMPLAINT_RATE=0.0),
    ]
    report = check(records, SEND_AND_RATES)
    assert report["overall"] == {"send_volume": 100.0, "bounce_rate": pytest.approx(0.01), "complaint_rate": 0.0}
    assert report["healthy"]


def test_json_records_use_upper_case_dimensions() -> None:
    content = (
        b'[{"email_identity":"a.com","metrics":{"SEND_VOLUME":1000.0,"PERMANENT_BOUNCE_VOLUME":60.0,'
        b'"COMPLAINT_VOLUME":0.0}}]\n'
    )
    report = check(list(iter_records(content, source_type="METRICS_DATA", data_format="JSON")))
    assert [b["group"] for b in report["breaches"]] == [{}, {"EMAIL_IDENTITY": "a.com"}]


def test_csv_file_through_the_reader() -> None:
    content = (
        b"EMAIL_IDENTITY,ISP,SEND_VOLUME,PERMANENT_BOUNCE_VOLUME,COMPLAINT_VOLUME\na.com,Gmail,200.0000,2.0000,1.0000\n"
    )
    report = check(list(iter_records(content, source_type="METRICS_DATA", data_format="CSV")))
    breach = {"metric": "complaint", "rate": 0.005, "threshold": 0.001, "send_volume": 200.0}
    assert report["breaches"] == [
        {"group": {}, **breach},
        {"group": {"EMAIL_IDENTITY": "a.com", "ISP": "Gmail"}, **breach},
    ]


@pytest.mark.parametrize(
    ("metrics", "checks", "missing"),
    [
        (
            [],
            ["bounce"],
            ['{"Name": "SEND", "Aggregation": "VOLUME"}', '{"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"}'],
        ),
        ([VOLUMES[0]], ["complaint"], ['{"Name": "COMPLAINT", "Aggregation": "VOLUME"}']),
        ([VOLUMES[1], VOLUMES[2]], ["bounce", "complaint"], ['{"Name": "SEND", "Aggregation": "VOLUME"}']),
    ],
)
def test_rate_source_names_the_metrics_to_add(metrics: Any, checks: list[str], missing: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        rate_source(metrics, checks)
    assert all(metric in str(err.value) for metric in missing)
    for check_name, param in (("bounce", "max_bounce_rate"), ("complaint", "max_complaint_rate")):
        assert (param in str(err.value)) == (check_name in checks)


def test_groups_and_breaches_are_capped() -> None:
    records = [row(f"{i:03}.com", 1000 + i, 100, 0) for i in range(150)] + [row("ok.com", 5000, 0, 0)]
    source = RateSource({"bounce": "VOLUME", "complaint": "VOLUME"}, True)
    report, every = check_rates(records, source, DEFAULT, max_listed=100)
    assert len(every) == 151 and every[:100] == report["breaches"]
    assert len(report["groups"]) == 100 and report["groups_total"] == 151 and report["groups_omitted"] == 51
    assert all(g["breach"] for g in report["groups"])  # breaching groups listed first
    assert report["groups"][0]["group"] == {"EMAIL_IDENTITY": "149.com"}  # then the biggest senders
    assert len(report["breaches"]) == 100 and report["breaches_total"] == 151 and report["breaches_omitted"] == 51
    assert report["breaches"][0]["group"] == {}  # the overall breach is never the one left out
    assert json.loads(json.dumps(report)) == report


# -- the operator ----------------------------------------------------------------------------------------------------
def metrics_job(metrics: list[dict[str, str]] = VOLUMES, **overrides: Any) -> dict[str, Any]:
    response = job_response("COMPLETED", **overrides)
    response["ExportDataSource"]["MetricsDataSource"]["Metrics"] = metrics
    return response


def run(
    hook: SesExportJobHook, records: list[dict[str, Any]] | None, **kwargs: Any
) -> tuple[Any, dict[str, Any], mock.MagicMock]:
    op = SesDeliverabilityCheckOperator(task_id="check", job_id=kwargs.pop("job_id", "job-1"), **kwargs)
    op.__dict__["hook"] = hook
    ti = mock.MagicMock()
    pushed: dict[str, Any] = {}
    ti.xcom_push.side_effect = lambda key, value, **_: pushed.__setitem__(key, value)
    reader = mock.MagicMock(return_value=iter(records or []))
    with mock.patch.object(hook, "iter_export_records", reader):
        try:
            result = op.execute({"ti": ti})
        finally:
            run.reader, run.pushed = reader, pushed  # type: ignore[attr-defined]
    return result, pushed, reader


BREACHING = [row("bad.com", 1000, 70, 2), row("good.com", 4000, 10, 0)]


def test_healthy_returns_the_report(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    result, pushed, reader = run(hook, [row("good.com", 4000, 10, 0)])
    assert result["healthy"] is True and result["job_id"] == "job-1" and result["breaches"] == []
    assert pushed == {}
    # the file is read with the GetExportJob response just received (one call: the URL is fresh)
    assert reader.call_args.kwargs["job"]["JobId"] == "job-1"
    assert PRESIGNED not in json.dumps(result)


def test_fail_lists_every_breach(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    with pytest.raises(SesDeliverabilityBreachError) as err:
        run(hook, BREACHING)
    assert isinstance(err.value, AirflowFailException)
    message = str(err.value)
    assert "2 breach(es)" in message
    assert "EMAIL_IDENTITY=bad.com: bounce rate 7.00% >= 5.00% (send volume 1,000)" in message
    assert "EMAIL_IDENTITY=bad.com: complaint rate 0.20% >= 0.10% (send volume 1,000)" in message
    assert "overall: bounce rate" not in message  # 80/5000 = 1.6%
    assert "overall: complaint rate 0.04%" not in message
    assert "good.com" not in message


def test_fail_pushes_the_report_too(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    with mock.patch.object(hook, "iter_export_records", return_value=iter(BREACHING)):
        op = SesDeliverabilityCheckOperator(task_id="check", job_id="job-1")
        op.__dict__["hook"] = hook
        ti = mock.MagicMock()
        with pytest.raises(SesDeliverabilityBreachError):
            op.execute({"ti": ti})
    (call,) = ti.xcom_push.call_args_list
    assert call.kwargs["key"] == "return_value" and call.kwargs["value"]["healthy"] is False


def test_skip_pushes_the_report_and_skips(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    with pytest.raises(AirflowSkipException, match="1 breach"):
        run(hook, BREACHING, on_breach="skip", max_complaint_rate=None)
    pushed = run.pushed  # type: ignore[attr-defined]
    assert pushed["return_value"]["healthy"] is False
    assert [b["metric"] for b in pushed["return_value"]["breaches"]] == ["bounce"]


def test_warn_succeeds_with_the_breaches(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    result, pushed, _ = run(hook, BREACHING, on_breach="warn")
    assert result["healthy"] is False and result["breaches_total"] == 2
    assert result["breaches"][0] == {
        "group": {"EMAIL_IDENTITY": "bad.com"},
        "metric": "bounce",
        "rate": pytest.approx(0.07),
        "threshold": 0.05,
        "send_volume": 1000.0,
    }
    assert pushed == {}


def test_message_insights_export_is_refused_before_reading(hook: SesExportJobHook, stubber: Stubber) -> None:
    job = job_response(
        "COMPLETED",
        ExportSourceType="MESSAGE_INSIGHTS",
        ExportDataSource={
            "MessageInsightsDataSource": {
                "StartDate": job_response("COMPLETED")["CreatedTimestamp"],
                "EndDate": job_response("COMPLETED")["CreatedTimestamp"],
            }
        },
    )
    stubber.add_response("get_export_job", job, {"JobId": "job-1"})
    with pytest.raises(SesExportInputError, match=r"MESSAGE_INSIGHTS export.*MetricsDataSource"):
        run(hook, BREACHING)
    run.reader.assert_not_called()  # type: ignore[attr-defined]


def test_missing_metrics_are_refused_before_reading(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job([VOLUMES[0]]), {"JobId": "job-1"})
    with pytest.raises(SesExportInputError) as err:
        run(hook, BREACHING)
    run.reader.assert_not_called()  # type: ignore[attr-defined]
    assert str(err.value) == (
        "SES export job 'job-1' cannot be checked: its MetricsDataSource.Metrics lacks what a threshold needs: "
        'max_bounce_rate needs {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"} '
        '(or {"Name": "PERMANENT_BOUNCE", "Aggregation": "RATE"}); '
        'max_complaint_rate needs {"Name": "COMPLAINT", "Aggregation": "VOLUME"} '
        '(or {"Name": "COMPLAINT", "Aggregation": "RATE"}). '
        "Add those entries to the export's Metrics, or set the threshold to None."
    )


def test_missing_metrics_name_only_the_threshold_that_lacks_them(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(VOLUMES[:2]), {"JobId": "job-1"})
    with pytest.raises(SesExportInputError) as err:
        run(hook, BREACHING)
    assert "max_complaint_rate needs" in str(err.value) and "max_bounce_rate" not in str(err.value)


def test_fail_message_lists_every_breach_beyond_the_xcom_cap(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("get_export_job", metrics_job(), {"JobId": "job-1"})
    records = [row(f"{i:03}.com", 1_234_567, 100_000, 0) for i in range(151)]
    with pytest.raises(SesDeliverabilityBreachError) as err:
        run(hook, records)
    message = str(err.value)
    assert all(f"EMAIL_IDENTITY={i:03}.com: bounce rate" in message for i in range(151))
    assert "(send volume 1,234,567)" in message
    assert len(run.pushed["return_value"]["breaches"]) == 100  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "error"),
    [("FAILED", SesExportJobFailedError), ("CANCELLED", SesExportJobCancelledError), ("PROCESSING", SesExportJobError)],
)
def test_unusable_job_raises_what_the_result_operator_raises(
    hook: SesExportJobHook, stubber: Stubber, status: str, error: type[Exception]
) -> None:
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(error):
        run(hook, BREACHING)
    run.reader.assert_not_called()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_bounce_rate": 0}, r"Invalid max_bounce_rate=0: expected a fraction in \(0, 1\]"),
        ({"max_bounce_rate": 5}, r"Invalid max_bounce_rate=5: .*SES reviews an account at a 0.05"),
        ({"max_complaint_rate": -0.1}, r"Invalid max_complaint_rate=-0.1"),
        ({"max_complaint_rate": "0.1"}, r"Invalid max_complaint_rate='0.1'"),
        ({"max_complaint_rate": math.nan}, r"Invalid max_complaint_rate=nan"),
        ({"max_bounce_rate": None, "max_complaint_rate": None}, "at least one of max_bounce_rate and"),
        ({"min_send_volume": -1}, r"Invalid min_send_volume=-1: expected an integer >= 0"),
        ({"on_breach": "stop"}, r"Invalid on_breach='stop': expected one of 'fail', 'skip', 'warn'"),
    ],
)
def test_bad_parameters_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SesExportInputError, match=match):
        SesDeliverabilityCheckOperator(task_id="check", job_id="job-1", **kwargs)


def test_bad_rendered_job_id_fails_before_any_call(hook: SesExportJobHook, stubber: Stubber) -> None:
    with pytest.raises(SesExportInputError, match="Invalid job_id='None'"):
        run(hook, BREACHING, job_id="None")


def test_job_id_is_templated() -> None:
    assert "job_id" in SesDeliverabilityCheckOperator.template_fields
