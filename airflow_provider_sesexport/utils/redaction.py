"""
One place for hiding pre-signed URLs: the scrubbing rule every logged, raised or chained text passes.

``S3Url`` and ``FailedRecordsS3Url`` are pre-signed URLs: whoever holds one can download customer
email data until it expires. Their secrets are the values of ``X-Amz-Signature``,
``X-Amz-Security-Token`` and ``X-Amz-Credential``, in any form: inside a whole URL, in a URL's path
and query without its scheme (requests/urllib3 write ``Max retries exceeded with url: /f.csv?...``),
percent-encoded up to three times (a URL quoted inside another URL or message), HTML-escaped (``&amp;``,
``&#61;``), JSON- or Python-escaped (``\\u003d``, JSON inside a JSON string), quoted or spaced
(``X-Amz-Signature = "..."``), as a header (``X-Amz-Security-Token: ...``), a dict, bytes-dict or
``parse_qsl`` tuple entry, the name itself percent-encoded (``X%2DAmz%2DSignature``). :func:`redact_text`
removes them all, in linear time; code that holds the URL also passes its values (``known``) so that a value
quoted without its name or wrapped across lines goes too. :func:`mask_url` registers them with Airflow's
secrets masker for log lines this package does not write.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from airflow_provider_sesexport._compat import mask_secret

__all__ = ["REDACTED", "redact_text", "redact_url"]

#: The query parameters of a SigV4 pre-signed URL whose values are secrets.
SECRET_PARAMS = ("X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential")

REDACTED = "<redacted>"

#: Shorter known values are not replaced literally (they could be common words).
_MIN_KNOWN = 8

# The patterns are strings, compiled on first use (and cached) by ``re``: a DAG file importing our operators loads
# this module without scrubbing anything.
# A whole URL of any scheme (https, http, file, ...) with a query string or fragment.
_URL = r"(?i)\b[a-z][a-z0-9+.-]{0,15}://[^\s'\"<>\\]+"
# A query string holding a signed-URL parameter, without the URL's scheme (``/file.csv?X-Amz-...``). ``?`` is not
# in the run before ``X-Amz-``, so runs tried from different ``?`` never overlap: linear time, whatever the text.
_SIGNED_QUERY = r"(?i)\?[^\s'\"<>\\?]*X-Amz-[^\s'\"<>\\]*"
# ``-`` raw, percent-encoded up to three times, as an HTML entity or a JSON / Python escape.
_DASH = r"(?:-|%(?:25){0,3}2D|&#45;|&#x0*2D;|\\u002D|\\x2D)"
_NAME = rf"(X{_DASH}Amz{_DASH}(?:Signature|Security{_DASH}Token|Credential))"
# Quotes and blanks around a separator: raw, backslash-escaped (JSON inside JSON), percent-encoded, HTML entities,
# a bytes literal's ``b'``.
_AROUND = r"(?:[ '\"]|\\(?!u003|x3)|b['\"]|&quot;|&#3[49];|&#x2[27];|&apos;|%(?:25){0,3}2[27])"
# The separator itself: ``=`` or ``:`` raw, percent-encoded up to three times, as HTML entities or JSON / Python
# escapes; a tab; the ``,`` after the quoted name of a ``(name, value)`` tuple.
_CORE = r"(?:[=:\t]|(?<=['\"]),|%(?:25){0,3}3[DA]|&#61;|&#58;|&#x0*3[DA];|&equals;|&colon;|\\u003[DA]|\\x3[DA])"
# Possessive runs (``*+``, ``++``) exist from Python 3.11 on; Python 3.10 gets greedy runs: the same matches (a
# scrubbed text may be scrubbed once more), each run still starting only after a parameter's name.
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""
# A value runs to the next parameter (``&``, ``%26`` encoded up to three times), a quote, a blank or a bracket.
_VALUE = rf"(?:(?!%(?:25){{0,3}}26)[^\s&'\"<>\\,;)\]}}])+{_POSSESSIVE}"
# A secret parameter's value in any form but inside a URL's query (handled above): the name in any encoding, a run of
# separators, the value. A run of blanks alone separates a value only when it is secret-shaped (20 characters or
# more), so prose such as "X-Amz-Signature mismatch" keeps its words. The runs are possessive (``*+``): never given
# back, so matching stays linear and a scrubbed text is a fixed point (``==<redacted>`` is no separator and value).
_SECRET_VALUE = (
    rf"{_NAME}((?:{_AROUND})*{_POSSESSIVE}{_CORE}(?:{_AROUND}|{_CORE})*{_POSSESSIVE})({_VALUE})"
    rf"|{_NAME}([ ]+{_POSSESSIVE})([A-Za-z0-9+/=%_.~-]{{20,}}{_POSSESSIVE})"
)


@functools.cache
def _secret_value() -> re.Pattern[str]:
    # Compiled on first use, not at import: it takes milliseconds, and a DAG file importing our operators loads
    # this module without scrubbing anything.
    return re.compile(_SECRET_VALUE, re.IGNORECASE)


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


def redact_text(text: str, known: Iterable[str] = ()) -> str:
    """
    Scrub ``text`` (an error message, another library's exception text, a log line) of pre-signed URL secrets.

    Whole URLs lose their query string, a scheme-less signed query string is replaced, and any
    ``X-Amz-Signature`` / ``X-Amz-Security-Token`` / ``X-Amz-Credential`` value left (percent-encoded,
    HTML-escaped, as a header) is replaced by ``<redacted>``.

    Code that holds the URL (a download) also passes its secret values as ``known``: each is then replaced wherever
    it appears, whatever surrounds it (without its name, wrapped across lines), raw or percent-encoded.

    :param text: any text.
    :param known: secret values to replace literally (:func:`secret_values` of the URLs in use).
    """
    if known:
        text = _known_pattern(tuple(sorted(set(known)))).sub(REDACTED, text)
    text = re.sub(_URL, lambda m: redact_url(m.group(0)) or "", text)
    text = re.sub(_SIGNED_QUERY, "?" + REDACTED, text)
    return _secret_value().sub(_redact_value, text)


def _redact_value(match: re.Match[str]) -> str:
    name, separator = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(5))
    return f"{name}{separator}{REDACTED}"


@functools.lru_cache(maxsize=64)
def _known_pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    """
    Each known secret value raw and percent-encoded up to three times, blanks and line breaks allowed between its
    characters (a value wrapped across lines), longest first.
    """
    variants: set[str] = set()
    for value in values:
        for _ in range(4):
            variants.add(value)
            value = quote(value, safe="")
    ordered = sorted((v for v in variants if len(v) >= _MIN_KNOWN), key=len, reverse=True)
    if not ordered:
        return re.compile(r"(?!)")
    return re.compile("|".join(r"\s*".join(map(re.escape, v)) for v in ordered), re.IGNORECASE)


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
