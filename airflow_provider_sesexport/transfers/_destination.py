"""Checking and resolving an S3 destination (bucket + key, or one ``s3://`` URI) before any AWS call."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_sesexport.utils.validation import invalid

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MAX_KEY_BYTES = 1024
_BUCKET_RULES = (
    "an S3 bucket name: 3-63 characters, lowercase letters, digits, '.' and '-', starting and ending with a "
    "letter or digit, not an IP address (just the name, e.g. 'my-exports', without s3:// or a key)"
)
#: Prefixes and suffixes S3 reserves (AWS's general purpose bucket naming rules): no bucket has them.
#: ``--x-s3`` is left alone: it ends the name of a directory bucket, which takes objects like any other.
_RESERVED_PREFIXES = {
    "xn--": "the prefix of internationalised (punycode) domain names",
    "sthree-": "reserved by S3 (sthree-, sthree-configurator)",
    "amzn-s3-demo-": "reserved for AWS's documentation examples",
}
_RESERVED_SUFFIXES = {
    "-s3alias": "reserved for access point aliases",
    "--ol-s3": "reserved for Object Lambda access point aliases",
    ".mrap": "reserved for Multi-Region Access Points",
    "--table-s3": "reserved for S3 table buckets",
}


def is_templated(value: Any) -> bool:
    """Whether ``value`` still contains a Jinja expression (so it is only known at run time)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def validate_bucket(value: Any, param: str = "s3_bucket") -> str:
    """
    Return ``value`` if it is a valid S3 bucket name, else raise naming ``param``.

    :param value: the rendered value.
    :param param: the parameter name for the error.
    """
    if not isinstance(value, str) or not _BUCKET.match(value) or ".." in value or ".-" in value or "-." in value:
        raise invalid(param, value, _BUCKET_RULES)
    for prefix, why in _RESERVED_PREFIXES.items():
        if value.startswith(prefix):
            raise invalid(param, value, _BUCKET_RULES, f"No bucket name starts with {prefix!r}: it is {why}.")
    for suffix, why in _RESERVED_SUFFIXES.items():
        if value.endswith(suffix):
            raise invalid(
                param,
                value,
                _BUCKET_RULES,
                f"No bucket name ends with {suffix!r}: it is {why}. Give the bucket's name.",
            )
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise invalid(param, value, _BUCKET_RULES)


def validate_key(value: Any, param: str = "s3_key") -> str:
    """
    Return ``value`` if it is a usable S3 object key, else raise naming ``param``.

    :param value: the rendered value.
    :param param: the parameter name for the error.
    """
    expected = "an S3 object key, e.g. 'ses/vdm/{{ ds }}.csv' (1-1024 bytes of UTF-8)"
    if not isinstance(value, str) or not value or value.strip() in {"", "None"}:
        raise invalid(param, value, expected)
    if len(value.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise invalid(param, value, expected, "This key is longer than S3 allows.")
    if value.startswith("/"):
        raise invalid(param, value, expected, "Drop the leading '/': S3 would store it as part of the key.")
    if value.endswith("/"):
        raise invalid(param, value, expected, "It ends with '/', like a folder: add the object's name.")
    if any(ord(ch) < 32 for ch in value):
        raise invalid(param, value, expected, "It contains control characters.")
    return value


def resolve_destination(dest: Any, s3_bucket: Any, s3_key: Any) -> tuple[str, str]:
    """
    ``(bucket, key)`` from either ``dest`` (``s3://bucket/key``) or ``s3_bucket`` + ``s3_key``, validated.

    :param dest: an ``s3://bucket/key`` URI, or None.
    :param s3_bucket: the bucket, or None.
    :param s3_key: the key, or None.
    """
    check_destination_args(dest, s3_bucket, s3_key)
    if dest is not None:
        if not isinstance(dest, str) or not dest.lower().startswith("s3://"):
            raise invalid("dest", dest, "an S3 URI like 's3://my-bucket/ses/{{ ds }}.csv'")
        parts = urlsplit(dest)
        if parts.query or parts.fragment:
            raise invalid("dest", dest, "an S3 URI like 's3://my-bucket/ses/{{ ds }}.csv' (no '?' or '#')")
        return validate_bucket(parts.netloc, "dest (bucket part)"), validate_key(parts.path[1:], "dest (key part)")
    return validate_bucket(s3_bucket), validate_key(s3_key)


def check_destination_args(dest: Any, s3_bucket: Any, s3_key: Any) -> None:
    """
    Raise unless exactly one way of naming the destination is used.

    :param dest: an ``s3://bucket/key`` URI, or None.
    :param s3_bucket: the bucket, or None.
    :param s3_key: the key, or None.
    """
    if dest is not None and (s3_bucket is not None or s3_key is not None):
        raise invalid(
            "dest", dest, "either dest='s3://bucket/key' or s3_bucket= with s3_key=, not both", "Drop one of them."
        )
    if dest is None and (s3_bucket is None or s3_key is None):
        missing = "s3_bucket" if s3_bucket is None else "s3_key"
        raise invalid(missing, None, "a value: give s3_bucket= and s3_key=, or one dest='s3://bucket/key'")


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"


def console_key(key: str) -> str:
    """``key`` escaped for the ``prefix=`` query parameter of an S3 console URL."""
    return quote(key, safe="/")
