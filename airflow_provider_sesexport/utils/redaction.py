"""
One place for hiding pre-signed URLs: the scrubbing rule every logged, raised or chained text passes.

``S3Url`` and ``FailedRecordsS3Url`` are pre-signed URLs: whoever holds one can download customer
email data until it expires. Their secrets are the values of ``X-Amz-Signature``,
``X-Amz-Security-Token`` and ``X-Amz-Credential``, in any form: inside a whole URL, in a URL's path
and query without its scheme (requests/urllib3 write ``Max retries exceeded with url: /f.csv?...``),
percent-encoded once or twice (a URL quoted inside another URL or message), HTML-escaped (``&amp;``),
as a header (``X-Amz-Security-Token: ...``) or a dict entry. :func:`redact_text` removes them all;
:func:`mask_url` registers them with Airflow's secrets masker for log lines this package does not write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from airflow_provider_sesexport._compat import mask_secret

#: The query parameters of a SigV4 pre-signed URL whose values are secrets.
SECRET_PARAMS = ("X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential")

REDACTED = "<redacted>"

# A whole URL of any scheme (https, http, file, ...) with a query string or fragment.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]{0,15}://[^\s'\"<>\\]+", re.IGNORECASE)
# A query string holding a signed-URL parameter, without the URL's scheme (``/file.csv?X-Amz-...``).
_SIGNED_QUERY = re.compile(r"\?[^\s'\"<>\\]*?X-Amz-[^\s'\"<>\\]*", re.IGNORECASE)
# A secret parameter's value in any other form: name, a separator (``=`` raw or encoded once or twice, or
# ``: `` of a header or a dict), then the value up to the next parameter (``&``, ``%26``, ``%2526``) or the text's end.
_SECRET_VALUE = re.compile(
    r"(X-Amz-(?:Signature|Security-Token|Credential))"
    r"(%(?:25)?3D|=|['\"]?\s*:\s*['\"]?)"
    r"((?:(?!%26|%2526)[^\s&'\"<>\\,;)\]}])+)",
    re.IGNORECASE,
)


def redact_url(url: str | None) -> str | None:
    """
    Return ``url`` without its query string and fragment (where a pre-signed URL keeps its signature).

    :param url: a URL, or None.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.query and not parts.fragment:
        return redact_text(url) if "x-amz-" in url.lower() else url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + "?" + REDACTED


def redact_text(text: str) -> str:
    """
    Scrub ``text`` (an error message, another library's exception text, a log line) of pre-signed URL secrets.

    Whole URLs lose their query string, a scheme-less signed query string is replaced, and any
    ``X-Amz-Signature`` / ``X-Amz-Security-Token`` / ``X-Amz-Credential`` value left (percent-encoded,
    HTML-escaped, as a header) is replaced by ``<redacted>``.

    :param text: any text.
    """
    text = _URL.sub(lambda m: redact_url(m.group(0)) or "", text)
    text = _SIGNED_QUERY.sub("?" + REDACTED, text)
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def secret_values(url: str) -> Iterator[str]:
    """
    The secret values of a pre-signed URL as they can appear in text: raw, percent-encoded once and twice;
    for ``X-Amz-Credential`` also its access key id alone.

    :param url: the URL.
    """
    try:
        params = parse_qsl(urlsplit(url).query, keep_blank_values=False)
    except ValueError:
        return
    wanted = {name.lower() for name in SECRET_PARAMS}
    for name, value in params:
        if name.lower() not in wanted:
            continue
        values = [value]
        if name.lower() == "x-amz-credential" and "/" in value:
            values.append(value.split("/", 1)[0])
        for raw in values:
            once = quote(raw, safe="")
            yield from dict.fromkeys((raw, once, quote(once, safe="")))


def mask_url(url: str | None) -> None:
    """
    Register a pre-signed URL and each of its secret values with Airflow's secrets masker, so any log line
    (a third-party library's included, botocore's DEBUG dump of the response too) shows ``***`` instead.

    :param url: the full URL, or None (ignored).
    """
    if not url:
        return
    mask_secret(url)
    for value in secret_values(url):
        mask_secret(value)
