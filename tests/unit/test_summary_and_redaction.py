from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_sesexport.utils.job_summary import summarize_export_job, url_expires_at
from airflow_provider_sesexport.utils.redaction import redact_text, redact_url
from tests.airflow_names import masker_redact
from tests.unit.responses import CREATED, PRESIGNED, job_response

RETRIEVED = dt.datetime(2026, 11, 1, 6, 30, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"])
def test_summary_shape(status: str) -> None:
    summary = summarize_export_job(job_response(status), RETRIEVED)
    assert json.loads(json.dumps(summary)) == summary
    expected = {
        "job_id",
        "job_status",
        "export_source_type",
        "data_format",
        "created_timestamp",
        "completed_timestamp",
        "statistics",
        "error_message",
    }
    if status == "COMPLETED":
        expected.add("s3_url_expires_at")
    assert set(summary) == expected
    assert summary["created_timestamp"] == CREATED.isoformat()
    assert ("://" in json.dumps(summary)) is False


def test_summary_of_empty_response() -> None:
    summary = summarize_export_job({}, RETRIEVED)
    assert summary["job_status"] is None and summary["statistics"] == {
        "ProcessedRecordsCount": None,
        "ExportedRecordsCount": None,
    }


def test_expiry_uses_signed_date_when_earlier() -> None:
    # X-Amz-Date 06:30:00 + 300 s
    assert url_expires_at(PRESIGNED, RETRIEVED) == dt.datetime(2026, 11, 1, 6, 35, tzinfo=dt.timezone.utc)


def test_expiry_defaults_to_five_minutes_after_retrieval() -> None:
    assert url_expires_at("s3://bucket/key.csv", RETRIEVED) == RETRIEVED + dt.timedelta(minutes=5)
    assert url_expires_at(None, RETRIEVED) == RETRIEVED + dt.timedelta(minutes=5)


def test_redact_url() -> None:
    redacted = redact_url(PRESIGNED)
    assert redacted == "https://export-bucket.s3.amazonaws.com/exports/job-1/data.csv?<redacted>"
    assert redact_url("s3://bucket/key") == "s3://bucket/key"
    assert redact_url(None) is None


def test_redact_text() -> None:
    text = f"download failed for {PRESIGNED} (403)"
    assert "X-Amz-Signature" not in redact_text(text)
    assert "(403)" in redact_text(text)


def _forms(url: str) -> dict[str, str]:
    """Every way a pre-signed URL's secrets reach a text: the forms the scrubbing rule must catch."""
    from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

    parts = urlsplit(url)
    token = parse_qs(parts.query)["X-Amz-Security-Token"][0]
    signature = parse_qs(parts.query)["X-Amz-Signature"][0]
    params = parse_qsl(parts.query)
    separators = [
        ("&#61;", "&#61;", ""),
        ("&#x3D;", "&#x3D;", ""),
        ("double quotes", '="', '"'),
        ("single quotes", "='", "'"),
        ("spaced =", " = ", ""),
        ("tab", "\t", ""),
        ("tab and =", "\t=\t", ""),
        ("spaces only", "   ", ""),
        ("\\u003d", "\\u003d", ""),
        ("%3D", "%3D", ""),
        ("%25253D", "%25253D", ""),
        ("colon, quoted", '": "', '"'),
    ]
    return {
        "whole url": f"download failed for {url} (403)",
        "urllib3, no scheme": (
            "HTTPSConnectionPool(host='x.invalid', port=443): "
            f"Max retries exceeded with url: {parts.path}?{parts.query}"
            " (Caused by NameResolutionError(\"Failed to resolve 'x.invalid'\"))"
        ),
        "requests, file scheme": f"No connection adapters were found for '{url.replace('https://', 'file:///')}'",
        "url-encoded once": f"see {quote(url, safe='')} for details",
        "url-encoded twice": f"see {quote(quote(url, safe=''), safe='')}",
        "html &amp;": f'<a href="{url.replace("&", "&amp;")}">file</a>',
        "query alone": f"?{parts.query}",
        "header": f"X-Amz-Security-Token: {token}\r\nHost: h",
        "dict repr": str({k: v[0] for k, v in parse_qs(parts.query).items()}),
        "chained exception text": f'ConnectionError(MaxRetryError("url: {parts.path}?{parts.query}"))',
        # the review's forms: each separator, quoting and encoding of a name and its value
        **{
            f"separator {name}": f"got X-Amz-Signature{sep}{signature}{end} and X-Amz-Security-Token{sep}{token}{end}"
            for name, sep, end in separators
        },
        "bytes-keyed dict repr": str({k.encode(): v.encode() for k, v in params}),
        "parse_qsl tuple list": str(params),
        "JSON inside a JSON string": json.dumps({"error": json.dumps(dict(params))}),
        "JSON inside JSON inside JSON": json.dumps({"e": json.dumps({"error": json.dumps(dict(params))})}),
        "url-encoded three times": f"see {quote(quote(quote(url, safe=''), safe=''), safe='')}",
        "name percent-encoded": quote(parts.query, safe="=&"),
        "name percent-encoded, value in a header": f"X%2DAmz%2DSecurity%2DToken: {token}\r\n",
        "html entities for = and &": parts.query.replace("=", "&#61;").replace("&X", "&amp;X"),
        "unicode-escaped query": parts.query.replace("=", "\\u003d").replace("-", "\\u002d"),
    }


@pytest.mark.parametrize("form", list(_forms(PRESIGNED)))
def test_redact_text_removes_every_secret_value_in_every_form(form: str) -> None:
    from tests.leakcheck import find_leaks, secret_values_of

    text = _forms(PRESIGNED)[form]
    assert find_leaks(text, form), "the form does not carry the planted values: the row would prove nothing"
    scrubbed = redact_text(text)
    assert not find_leaks(scrubbed, form), scrubbed
    assert len(secret_values_of(PRESIGNED)) == 3
    assert redact_text(scrubbed) == scrubbed  # a fixed point: scrubbing twice changes nothing


def test_redact_text_keeps_the_rest_of_the_message() -> None:
    text = redact_text(_forms(PRESIGNED)["urllib3, no scheme"])
    assert "x.invalid" in text and "/exports/job-1/data.csv?<redacted>" in text and "NameResolutionError" in text
    assert (
        redact_text("job X-AMZ-SIGNATURE failed, see s3://bucket/key")
        == "job X-AMZ-SIGNATURE failed, see s3://bucket/key"
    )


def test_mask_url_registers_each_secret_value_once_per_url() -> None:
    from unittest import mock
    from urllib.parse import parse_qs, quote, urlsplit

    from airflow_provider_sesexport.utils.redaction import mask_url
    from tests.leakcheck import plant_url, secret_values_of

    url = plant_url()
    token = parse_qs(urlsplit(url).query)["X-Amz-Security-Token"][0]
    with mock.patch("airflow_provider_sesexport.utils.redaction.mask_secret") as mask:
        mask_url(url)
        mask_url(url)  # seen again (botocore's hook, then the poll): not registered twice
        mask_url(None)
    registered = [c.args[0] for c in mask.call_args_list]
    assert sorted(registered) == sorted({*secret_values_of(url), quote(token, safe="")}), registered


def test_the_masker_hides_a_third_party_log_line_of_the_secret_values() -> None:
    """Through Airflow's real secrets masker: a line quoting only the token (botocore's DEBUG dump, say) is masked."""
    from urllib.parse import parse_qs, urlsplit

    from airflow_provider_sesexport.utils.redaction import mask_url
    from tests.leakcheck import find_leaks, plant_url

    url = plant_url()
    token = parse_qs(urlsplit(url).query)["X-Amz-Security-Token"][0]
    line = f"Response body: {{'X-Amz-Security-Token': {token!r}}}, path {urlsplit(url).path}?{urlsplit(url).query}"
    assert find_leaks(line, "line")
    mask_url(url)
    masked = masker_redact(line)
    assert not find_leaks(masked, "masked"), masked
    assert "***" in masked


@pytest.mark.parametrize(
    "adversarial",
    [
        "?" * 200_000,
        "?a" * 100_000,
        "?X-Amz" * 33_000,
        "X-Amz-Signature" + " " * 200_000,
        "X-Amz-Signature=" * 12_000,
        "X-Amz-Signature\t" * 12_000,
        "X%2DAmz%2DSignature%25" + "25" * 100_000,
        "X-Amz-Signature='" + "%2525" * 40_000,
        "http://" * 28_000,
    ],
    ids=lambda text: repr(text[:24]),
)
def test_redact_text_is_linear_on_adversarial_text(adversarial: str) -> None:
    """200 KB built to make a backtracking pattern quadratic: measured under 0.05 s each, so 0.5 s is 10x margin."""
    import time

    started = time.perf_counter()
    redact_text(adversarial)
    assert time.perf_counter() - started < 0.5


def test_known_values_are_replaced_wherever_they_appear_even_wrapped_across_lines() -> None:
    """What holds the URL passes its values: a value wrapped across lines, or quoted without its name, goes too."""
    from urllib.parse import parse_qs, quote, urlsplit

    from airflow_provider_sesexport.utils.redaction import secret_values
    from tests.leakcheck import find_leaks, plant_url

    url = plant_url()
    query = parse_qs(urlsplit(url).query)
    signature, token = query["X-Amz-Signature"][0], query["X-Amz-Security-Token"][0]
    text = (
        f"X-Amz-Signature={signature[:30]}\n{signature[30:]} then the token {token[:50]}\r\n    {token[50:]};"
        f" bare {token} and quoted twice {quote(quote(token, safe=''), safe='')}"
    )
    assert signature[30:] in redact_text(text)  # by shape alone, the wrapped tail survives
    scrubbed = redact_text(text, known=secret_values(url))
    for fragment in (signature[:30], signature[30:], token[:50], token[50:]):
        assert fragment not in scrubbed, scrubbed
    assert not find_leaks(scrubbed, "wrapped")
    assert "then the token" in scrubbed and "quoted twice" in scrubbed
    assert redact_text(scrubbed, known=secret_values(url)) == scrubbed
