"""
Pre-signed-style download URLs on the emulator itself, with server-side (scaled) expiry.

A URL looks like an S3 SigV4 query-signed URL::

    http://127.0.0.1:PORT/_exports/<job>/<file>?X-Amz-Algorithm=AWS4-HMAC-SHA256
        &X-Amz-Credential=ASIA<16 random>/20240101/us-east-1/s3/aws4_request
        &X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host
        &X-Amz-Security-Token=IQoJb3JpZ2luX2Vj<80 random>&X-Amz-Signature=<hmac>

Every call to :meth:`UrlSigner.sign` returns a new URL whose secret values (signature, security
token, the credential's access key id) are unique, across emulators and processes too: tests plant
them and the leak checks look for exactly these values (:func:`issued_secrets`, also the control
operation ``issued_secrets``). ``X-Amz-Expires`` always says 300, but the emulator remembers, per
signature, a deadline of ``expires_seconds * time_scale`` after signing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

_PRUNE_AT = 50_000

#: How a security token of this emulator starts (as a real STS session token does).
TOKEN_PREFIX = "IQoJb3JpZ2luX2Vj"
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "+/"
_KEY_ALPHABET = string.ascii_uppercase + string.digits

_issued: set[str] = set()
_issued_lock = threading.Lock()


def new_secret_values() -> tuple[str, str]:
    """
    A fresh, unique ``(access_key_id, security_token)`` pair, shaped like AWS's (``ASIA`` + 16, token with ``+/``).

    Recorded with :func:`record_issued`, as the signature computed with them must be too.
    """
    access_key = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    token = TOKEN_PREFIX + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(80))
    return access_key, token


def record_issued(*values: str) -> None:
    """
    Remember secret values handed out in a URL (this process's registry, read by :func:`issued_secrets`).

    :param values: signature, security token, access key id.
    """
    with _issued_lock:
        _issued.update(values)


def is_issued(value: str) -> bool:
    """
    Whether ``value`` is a secret value this process put in a URL.

    :param value: any string.
    """
    return value in _issued


def issued_secrets() -> list[str]:
    """Every secret value (signature, security token, access key id) this process put in a URL so far."""
    with _issued_lock:
        return sorted(_issued)


class UrlSigner:
    """
    Signs and checks download URLs.

    :param secret: the HMAC key (derive it from the seed for reproducible URLs).
    :param region: the region shown in the credential scope.
    :param expires_seconds: nominal lifetime shown as ``X-Amz-Expires``.
    :param time_scale: the emulator's time scale; real lifetime is ``expires_seconds * time_scale``.
    """

    def __init__(self, secret: bytes, region: str = "us-east-1", expires_seconds: int = 300, time_scale: float = 1.0):
        self._secret = secret
        self.region = region
        self.expires_seconds = expires_seconds
        self.time_scale = time_scale
        self.expire_immediately = False
        self._deadlines: dict[str, float] = {}

    def _signature(self, path: str, credential: str, amz_date: str, token: str) -> str:
        """
        HMAC over the parts of the URL that must not be tampered with.

        :param path: the URL path.
        :param credential: the ``X-Amz-Credential`` value.
        :param amz_date: the ``X-Amz-Date`` value.
        :param token: the ``X-Amz-Security-Token`` value.
        """
        msg = f"{path}\n{credential}\n{amz_date}\n{self.expires_seconds}\n{token}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, now: float | None = None) -> str:
        """
        A fresh pre-signed-style URL for ``path``.

        :param base_url: ``http://host:port`` of the emulator.
        :param path: the path, starting with ``/``.
        :param now: wall-clock time (default ``time.time()``).
        """
        wall = time.time() if now is None else now
        stamp = datetime.fromtimestamp(wall, tz=timezone.utc)
        amz_date = stamp.strftime("%Y%m%dT%H%M%SZ")
        access_key, token = new_secret_values()
        credential = f"{access_key}/{stamp:%Y%m%d}/{self.region}/s3/aws4_request"
        signature = self._signature(path, credential, amz_date, token)
        record_issued(signature, token, access_key)
        lifetime = 0.0 if self.expire_immediately else self.expires_seconds * self.time_scale
        if len(self._deadlines) > _PRUNE_AT:
            self.prune()
        self._deadlines[signature] = time.monotonic() + lifetime
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": credential,
                "X-Amz-Date": amz_date,
                "X-Amz-Expires": str(self.expires_seconds),
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Security-Token": token,
                "X-Amz-Signature": signature,
            },
            quote_via=quote,
        )
        return f"{base_url}{path}?{query}"

    def check(self, path: str, query: Mapping[str, str]) -> tuple[str, str] | None:
        """
        ``None`` if the URL is valid now, else the S3 error ``(code, message)`` to send with a 403.

        :param path: the request path.
        :param query: the request's query parameters.
        """
        signature = query.get("X-Amz-Signature", "")
        credential = query.get("X-Amz-Credential", "")
        amz_date = query.get("X-Amz-Date", "")
        token = query.get("X-Amz-Security-Token", "")
        if not signature or not credential or not amz_date:
            return "AccessDenied", "Query-string authentication requires the Signature, Credential and Date parameters"
        expected = self._signature(path, credential, amz_date, token)
        if not hmac.compare_digest(expected, signature):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        deadline = self._deadlines.get(signature)
        if deadline is None or time.monotonic() >= deadline:
            return "AccessDenied", "Request has expired"
        return None

    def expire_all(self) -> int:
        """Make every URL issued so far expire now; returns how many were live."""
        now = time.monotonic()
        live = sum(1 for d in self._deadlines.values() if d > now)
        for key in self._deadlines:
            self._deadlines[key] = 0.0
        return live

    def prune(self) -> None:
        """Forget expired signatures (they then fail the same way: ``Request has expired``)."""
        now = time.monotonic()
        self._deadlines = {k: d for k, d in self._deadlines.items() if d > now}
