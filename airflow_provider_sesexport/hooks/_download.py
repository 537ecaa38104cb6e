"""
Downloading a finished export: fresh URLs, streaming, resuming, both URL forms.

GetExportJob's ``S3Url`` expires five minutes after the call returned it and is a bearer credential.
So a download here always starts from a fresh GetExportJob, never from a URL found in XCom, and when
the URL is rejected (403, expired) or the connection drops, a new GetExportJob supplies a new URL and
the download resumes where it stopped (``Range: bytes=N-``, ``If-Match`` on the first ETag so a
changed file is never spliced). Servers that ignore ``Range`` are re-read from the start with the
bytes already delivered skipped. URLs are only ever logged without their query string, and every error
text from requests/urllib3 (which quotes the URL's path and query) passes the scrubbing rule of
:mod:`~airflow_provider_sesexport.utils.redaction` and is raised outside the ``except`` block, so no chained
exception carries it. A redirect is followed only within the URL's origin (scheme, host and port): to
another one it is refused, naming the job.

Two URL forms are handled: the documented https pre-signed URL (read with ``requests``) and an
``s3://bucket/key`` URL (read with the Amazon provider's ``S3Hook`` on the same connection).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from airflow_provider_sesexport.exceptions import SesExportDownloadError
from airflow_provider_sesexport.utils.aws_errors import describe, error_code
from airflow_provider_sesexport.utils.redaction import redact_text, redact_url, secret_values

DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Failed attempts in a row (no byte delivered in between) before a download gives up.
DEFAULT_MAX_ATTEMPTS = 6
#: ``(connect, read)`` seconds for https downloads.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)

#: What a download calls for a fresh URL: GetExportJob now, ``(url, expires_at, job)``; the job must be COMPLETED.
UrlRefresher = Callable[[], tuple[str, dt.datetime, dict[str, Any]]]

# Patterns as strings, compiled on first use (and cached) by ``re``, not when a DAG file imports this module.
_S3_ERROR_CODE = rb"<Code>([^<]{1,100})</Code>"
_S3_ERROR_MESSAGE = rb"<Message>([^<]{1,300})</Message>"
_CONTENT_RANGE = r"^bytes (\d+)-(\d+)/(\d+|\*)$"
_MAX_REDIRECTS = 5
#: URL schemes a download reads (``http`` for local S3-compatible servers and the emulator).
_SCHEMES = ("https", "http", "s3")


class _Rejected(Exception):
    """The URL was refused (403 and friends): a fresh URL may help."""


class _Transient(Exception):
    """The server had a hiccup or the connection dropped: retry, resuming where we stopped."""


def _s3_error_text(body: bytes, known: Iterable[str] = ()) -> str:
    """
    ``Code: Message`` of an S3 XML error body, never the rest (it can echo the signature), scrubbed.

    :param body: the body's first bytes.
    :param known: the secret values of the URL in use (:func:`~airflow_provider_sesexport.utils.redaction.redact_text`).
    """
    code = re.search(_S3_ERROR_CODE, body)
    message = re.search(_S3_ERROR_MESSAGE, body)
    parts = [m.group(1).decode("utf-8", "replace") for m in (code, message) if m]
    return redact_text(": ".join(parts), known) if parts else "no error details"


def origin(url: str) -> str:
    """
    ``scheme://host:port`` of ``url`` (default port made explicit): what "the same host" means for a redirect.

    :param url: an absolute URL.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def network_error_text(exc: BaseException, known: Iterable[str] = ()) -> str:
    """
    ``Type: message`` of a requests/urllib3/socket error, scrubbed (its text carries the URL's path and query).

    :param exc: the error.
    :param known: the secret values of the URL in use (:func:`~airflow_provider_sesexport.utils.redaction.redact_text`).
    """
    return redact_text(f"{type(exc).__name__}: {exc}", known)


def parse_s3_url(url: str) -> tuple[str, str]:
    """
    Split ``s3://bucket/key`` into ``(bucket, key)``.

    :param url: an ``s3://`` URL.
    """
    parts = urlsplit(url)
    key = unquote(parts.path.lstrip("/"))
    if parts.scheme.lower() != "s3" or not parts.netloc or not key:
        raise SesExportDownloadError(f"Cannot read export URL {redact_url(url)!r}: expected s3://bucket/key")
    return parts.netloc, key


class ExportStream(Iterator[bytes]):
    """
    The bytes of a COMPLETED export's file, in order, each byte exactly once.

    Iterate it (or pass it to anything that takes an iterator of bytes). While it runs it keeps:
    ``job`` (the latest GetExportJob response, URL included: do not log it), ``size`` (the file's
    length when the server said it), ``bytes_read``, ``etag``, ``content_type``, ``url_refreshes``
    (GetExportJob calls after the first) and ``resumes`` (requests after the first).

    It calls nothing of the hook but what it is given (:meth:`SesExportJobHook.open_export_stream
    <airflow_provider_sesexport.hooks.ses_export.SesExportJobHook.open_export_stream>` gives them).

    :param job_id: the export job's id (for messages).
    :param refresh_url: returns a fresh URL of the job's file (GetExportJob now): ``(url, expires_at, job)``.
    :param s3_client: returns the S3 client that reads ``s3://`` URLs; called on the first such read.
    :param log: where warnings about interrupted downloads go.
    :param timeout: ``(connect, read)`` seconds for https downloads.
    :param verify: TLS verification for https downloads (``requests``' ``verify``).
    :param chunk_size: bytes per chunk (the last one may be shorter).
    :param max_attempts: failed attempts in a row (no progress in between) before giving up.
    :param retry_delay: seconds before retrying after a network error (doubles each time, at most 30).
    """

    def __init__(
        self,
        job_id: str,
        refresh_url: UrlRefresher,
        s3_client: Callable[[], Any],
        *,
        log: logging.Logger | logging.LoggerAdapter[Any] | Any = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_delay: float = 1.0,
    ) -> None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"Invalid chunk_size={chunk_size!r}: expected a positive number of bytes.")
        self.job_id = job_id
        self.refresh_url = refresh_url
        self.s3_client = s3_client
        self.log: logging.Logger | logging.LoggerAdapter[Any] | Any = log or logging.getLogger(__name__)
        self.timeout = timeout
        self.verify = verify
        self.chunk_size = chunk_size
        self.max_attempts: int = max(1, max_attempts)
        self.retry_delay = retry_delay
        self.job: dict[str, Any] = {}
        self.url: str | None = None
        self.expires_at: dt.datetime | None = None
        self.size: int | None = None
        self.bytes_read: int = 0
        self.etag: str | None = None
        self.content_type: str | None = None
        self.url_refreshes: int = -1
        self.resumes: int = 0
        #: the secret values of every URL this stream was given, replaced literally in every text it writes
        self._known: set[str] = set()
        self._session: Any = None
        self._response: Any = None
        self._chunks: Iterator[bytes] | None = None

    # -- iterator protocol --------------------------------------------------------------------
    def __iter__(self) -> ExportStream:
        return self

    def __next__(self) -> bytes:
        if self._chunks is None:
            self._chunks = self._generate()
        return next(self._chunks)

    def open(self) -> ExportStream:
        """Fetch a fresh URL now (GetExportJob); the download itself starts on the first ``next()``."""
        if self.url is None:
            self._refresh()
        return self

    def close(self) -> None:
        """Stop downloading and release the connection."""
        if self._chunks is not None and hasattr(self._chunks, "close"):
            self._chunks.close()
        self._release()
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> ExportStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def safe_url(self) -> str | None:
        """The current URL without its signature, for messages."""
        return redact_url(self.url)

    # -- internals ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        self.url, self.expires_at, self.job = self.refresh_url()
        self._known.update(secret_values(self.url))
        self.url_refreshes += 1

    def _release(self) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except Exception:
                pass
            self._response = None

    def _generate(self) -> Iterator[bytes]:
        failures = 0
        need_refresh = self.url is None
        while True:
            if need_refresh:
                self._refresh()
                need_refresh = False
            start = self.bytes_read
            try:
                yield from self._reader()()
                if self.size is not None and self.bytes_read < self.size:
                    raise _Transient(f"connection closed after {self.bytes_read} of {self.size} bytes")
                return
            except _Rejected as exc:
                problem, delay = f"URL rejected ({exc})", 0.0
            except _Transient as exc:
                problem = str(exc)
                delay = min(self.retry_delay * 2**failures, 30.0)
            finally:
                self._release()
            failures = 0 if self.bytes_read > start else failures + 1
            if failures >= self.max_attempts:
                raise SesExportDownloadError(
                    f"Could not download the file of SES export job {self.job_id!r} from {self.safe_url}: "
                    f"{problem}; gave up after {failures} attempts in a row without progress "
                    f"({self.bytes_read} bytes received)."
                )
            self.log.warning(
                "Download of SES export job %s interrupted at byte %d: %s. Fetching a fresh URL and resuming.",
                self.job_id,
                self.bytes_read,
                problem,
            )
            self.resumes += 1
            need_refresh = True
            if delay:
                time.sleep(delay)

    def _reader(self) -> Callable[[], Iterator[bytes]]:
        scheme = urlsplit(self.url or "").scheme.lower()
        if scheme not in _SCHEMES:
            raise SesExportDownloadError(
                f"Cannot download the file of SES export job {self.job_id!r}: its URL {self.safe_url} has the "
                f"scheme {scheme + '://' if scheme else '(none)'}; expected https:// (or s3://)."
            )
        return self._read_s3 if scheme == "s3" else self._read_https

    def _check_total(self, total: int | None, etag: str | None) -> None:
        if total is not None:
            if self.size is not None and total != self.size:
                raise SesExportDownloadError(
                    f"The file of SES export job {self.job_id!r} changed size during the download "
                    f"({self.size} then {total} bytes)."
                )
            self.size = total
        if etag and self.etag and etag != self.etag:
            raise SesExportDownloadError(
                f"The file of SES export job {self.job_id!r} changed during the download "
                f"(ETag {self.etag} then {etag})."
            )
        self.etag = self.etag or etag

    def _skip(self, chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
        """Drop the first ``count`` bytes of ``chunks`` (for a server that ignored ``Range``)."""
        for chunk in chunks:
            if count >= len(chunk):
                count -= len(chunk)
                continue
            yield chunk[count:]
            count = 0

    def _deliver(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if not chunk:
                continue
            if self.size is not None and self.bytes_read + len(chunk) > self.size:
                raise SesExportDownloadError(
                    f"The server sent more than the {self.size} bytes it announced for SES export job {self.job_id!r}."
                )
            self.bytes_read += len(chunk)
            yield chunk

    def _read_https(self) -> Iterator[bytes]:
        import requests

        if self._session is None:
            self._session = requests.Session()
        offset = self.bytes_read
        # identity: the stored bytes exactly (a server must not compress on the fly, Range is in stored bytes).
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.etag:
                headers["If-Match"] = self.etag
        assert self.url is not None
        response = self._get_same_origin(self.url, headers)
        self._response = response
        status = response.status_code
        if status in (400, 401, 403, 404):
            raise _Rejected(f"HTTP {status} {self._error_body(response)}")
        if status == 412:
            raise SesExportDownloadError(
                f"The file of SES export job {self.job_id!r} changed during the download (If-Match failed)."
            )
        if status == 416 and self.size is not None and offset >= self.size:
            return
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}")
        if status not in (200, 206):
            raise SesExportDownloadError(
                f"Unexpected HTTP {status} downloading the file of SES export job {self.job_id!r} from {self.safe_url}."
            )
        etag = response.headers.get("ETag")
        self.content_type = self.content_type or response.headers.get("Content-Type")
        chunks = self._iter_raw(response)
        if status == 206:
            match = re.match(_CONTENT_RANGE, response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                raise SesExportDownloadError(
                    f"The server answered Range bytes={offset}- with Content-Range "
                    f"{response.headers.get('Content-Range')!r} for SES export job {self.job_id!r}."
                )
            self._check_total(None if match.group(3) == "*" else int(match.group(3)), etag)
        else:
            length = response.headers.get("Content-Length")
            self._check_total(int(length) if length and length.isdigit() else None, etag)
            if offset:
                self.log.info("The server ignored Range; re-reading and skipping the first %d bytes.", offset)
                chunks = self._skip(chunks, offset)
        yield from self._deliver(chunks)

    def _error_body(self, response: Any) -> str:
        """
        What an error response's body says (:func:`_s3_error_text`); a connection broken while reading it is transient.

        :param response: the streamed response.
        """
        import requests

        failure = None
        try:
            body = response.raw.read(4096, decode_content=False)
        except (Urllib3Error, requests.RequestException, OSError) as exc:
            failure = f"connection broken reading the HTTP {response.status_code} answer: "
            failure += network_error_text(exc, self._known)
        if failure is not None:  # raised outside the except block: no chained error carries the URL
            raise _Transient(failure)
        return _s3_error_text(body, self._known)

    def _get_same_origin(self, url: str, headers: dict[str, str]) -> Any:
        """
        GET ``url``, following redirects only within its origin (scheme, host and port).

        A redirect elsewhere is refused, not followed: the request carries the pre-signed URL's
        signature, and a file served from another host is not the export SES wrote.

        :param url: the pre-signed URL.
        :param headers: the request headers (``Range``, ``If-Match``).
        """
        import requests

        for _hop in range(_MAX_REDIRECTS + 1):
            failure = None
            try:
                response = self._session.get(
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=self.timeout,
                    verify=self.verify,
                )
            except requests.RequestException as exc:
                failure = f"request failed: {network_error_text(exc, self._known)}"
            if failure is not None:  # raised outside the except block: no chained requests error carries the URL
                raise _Transient(failure)
            location = response.headers.get("Location") if response.is_redirect else None
            if location is None:
                return response
            response.close()
            target = urljoin(url, location)
            if origin(target) != origin(url):
                raise SesExportDownloadError(
                    f"The download URL of SES export job {self.job_id!r} ({self.safe_url}) redirected to another "
                    f"host, {origin(target)}: not followed (only redirects within {origin(url)} are)."
                )
            url = target
        raise SesExportDownloadError(
            f"The download URL of SES export job {self.job_id!r} ({self.safe_url}) redirected more than "
            f"{_MAX_REDIRECTS} times."
        )

    def _iter_raw(self, response: Any) -> Iterator[bytes]:
        import requests

        chunks = response.raw.stream(self.chunk_size, decode_content=False)
        while True:
            failure = None
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except (Urllib3Error, requests.RequestException, OSError) as exc:
                failure = f"connection broken: {network_error_text(exc, self._known)}"
            if failure is not None:  # raised outside the except block: no chained error carries the URL
                raise _Transient(failure)
            yield chunk

    def _read_s3(self) -> Iterator[bytes]:
        assert self.url is not None
        bucket, key = parse_s3_url(self.url)
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        offset = self.bytes_read
        if offset:
            request["Range"] = f"bytes={offset}-"
            if self.etag:
                request["IfMatch"] = self.etag
        client = self.s3_client()
        try:
            response = client.get_object(**request)
        except ClientError as exc:
            code, status = error_code(exc), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code == "PreconditionFailed":
                raise SesExportDownloadError(
                    f"The file of SES export job {self.job_id!r} changed during the download (If-Match failed)."
                ) from None
            if code == "InvalidRange" and self.size is not None and offset >= self.size:
                return
            if status in (400, 401, 403, 404):
                raise _Rejected(describe(exc)) from None
            raise _Transient(describe(exc)) from None
        except BotoCoreError as exc:
            raise _Transient(describe(exc)) from None
        body = response["Body"]
        self._response = body
        self.content_type = self.content_type or response.get("ContentType")
        content_range = response.get("ContentRange")
        if content_range:
            match = re.match(_CONTENT_RANGE, content_range)
            if not match or int(match.group(1)) != offset:
                raise SesExportDownloadError(f"S3 answered Range bytes={offset}- with {content_range!r}.")
            self._check_total(None if match.group(3) == "*" else int(match.group(3)), response.get("ETag"))
        else:
            self._check_total(offset + int(response.get("ContentLength") or 0), response.get("ETag"))
        try:
            yield from self._deliver(body.iter_chunks(self.chunk_size))
        except (BotoCoreError, OSError) as exc:
            raise _Transient(f"connection broken: {describe(exc)}") from None
