"""
One place for hiding pre-signed URLs.

``S3Url`` and ``FailedRecordsS3Url`` are pre-signed URLs: whoever holds one can download customer
email data until it expires. Logs, exception messages and task summaries only ever show them with
the query string (the signature) stripped, and full URLs are registered with Airflow's secrets masker.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_PRESIGNED_URL = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


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
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + "?<redacted>"


def redact_text(text: str) -> str:
    """
    Redact every http(s) URL with a query string inside free text (an error message from AWS, say).

    :param text: any text.
    """
    return _PRESIGNED_URL.sub(lambda m: redact_url(m.group(0)) or "", text)


def mask_url(url: str | None) -> None:
    """
    Register a pre-signed URL with Airflow's secrets masker, so any log line that contains it shows ``***``.

    :param url: the full URL, or None (ignored).
    """
    if not url:
        return
    from airflow_provider_sesexport._compat import mask_secret

    mask_secret(url)
