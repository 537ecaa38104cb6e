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


def secret_values(url: str) -> list[str]:
    """
    The secret values of a pre-signed URL as the secrets masker needs them: the signature (hex, the same in any
    encoding), the credential's access key id (its secret part, also encoding-proof) and the security token raw and
    percent-encoded (as it appears inside a URL).

    :param url: the URL.
    """
    try:
        params = parse_qsl(urlsplit(url).query, keep_blank_values=False)
    except ValueError:
        return []
    values: dict[str, None] = {}
    for name, value in params:
        name = name.lower()
        if name == "x-amz-signature":
            values[value] = None
        elif name == "x-amz-credential":
            values[value.split("/", 1)[0]] = None
        elif name == "x-amz-security-token":
            values[value] = values[quote(value, safe="")] = None
    return list(values)


#: URLs already registered in this process (GetExportJob's answer is seen by botocore's hook, then by the poll).
_masked: set[str] = set()


def mask_url(url: str | None) -> None:
    """
    Register a pre-signed URL's secret values with Airflow's secrets masker (once per URL and process), so any log
    line showing them (a third-party library's, botocore's DEBUG dump of the response too) shows ``***`` instead.

    Only the secret values are registered, not the whole URL: each registration makes the masker rebuild its
    pattern, and the values are all a line needs masked.

    :param url: the full URL, or None (ignored).
    """
    if not url or url in _masked:
        return
    if len(_masked) > 10_000:
        _masked.clear()
    _masked.add(url)
    for value in secret_values(url):
        mask_secret(value)
