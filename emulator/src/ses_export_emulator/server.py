"""
The aiohttp application: SES v2 rest-json routes, downloads, control API and wire encoding.

All state lives in one :class:`EmulatorCore`, touched only from the server's event loop, so no
locks are needed and handlers never block: latency is ``await asyncio.sleep``, downloads are
generated chunk by chunk and written with backpressure.

Routes:

* ``POST /v2/email/export-jobs`` (CreateExportJob), ``GET /v2/email/export-jobs/{JobId}``
  (GetExportJob), ``POST /v2/email/list-export-jobs`` (ListExportJobs),
  ``PUT /v2/email/export-jobs/{JobId}/cancel`` (CancelExportJob);
* ``GET|HEAD /_exports/{JobId}/{file}?X-Amz-...``: pre-signed-style downloads (Range supported);
* ``/_emulator/...``: JSON control API, one route per row of
  :data:`~ses_export_emulator.operations.OPERATIONS`.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from ses_export_emulator.core import EmulatorCore
from ses_export_emulator.exportfile import ExportFile, FailedRecordsFile
from ses_export_emulator.jobs import Job, JobError, source_type_of
from ses_export_emulator.operations import OPERATIONS, ControlOperation
from ses_export_emulator.validation import ValidationFailed, validate_request

__all__ = ["EmulatorCore", "build_app"]

FAILED_RECORDS_FILE = "failed-records.csv"
#: Real SES's answer to GetExportJob / CancelExportJob of an unknown JobId (400 BadRequestException).
INVALID_JOB_ID = "Invalid JobId"
#: The start of real SES's answer to CreateExportJob on an account without VDM (400 BadRequestException).
VDM_DISABLED = "To use this feature you must enable Virtual Deliverability Manager."
_ERROR_STATUS = {
    "BadRequestException": 400,
    "NotFoundException": 404,
    "TooManyRequestsException": 429,
    "LimitExceededException": 400,
    "AccessDeniedException": 403,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
}


# -- wire encoding ---------------------------------------------------------------------------
def to_wire(value: Any) -> Any:
    """
    Params (with datetimes) to rest-json wire values (timestamps as epoch seconds).

    :param value: params.
    """
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    """
    A rest-json response.

    :param data: the body.
    :param status: HTTP status.
    """
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def error_response(code: str, message: str) -> web.Response:
    """
    A rest-json modeled error: ``x-amzn-ErrorType`` header and ``{"message": ...}`` body.

    :param code: the error shape name, e.g. ``NotFoundException``.
    :param message: the message.
    """
    return web.Response(
        body=json.dumps({"message": message}).encode(),
        status=_ERROR_STATUS.get(code, 400),
        content_type="application/json",
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _s3_error(status: int, code: str, message: str, resource: str, extra: dict[str, str] | None = None) -> web.Response:
    """
    An S3-style XML error.

    :param status: HTTP status.
    :param code: S3 error code.
    :param message: message.
    :param resource: the request path.
    :param extra: extra response headers.
    """
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return web.Response(body=body.encode(), status=status, content_type="application/xml", headers=extra or {})


def job_to_wire(core: EmulatorCore, job: Job, base_url: str, status: str | None = None) -> dict[str, Any]:
    """
    The GetExportJob response of a job (a fresh download URL when COMPLETED).

    :param core: the emulator.
    :param job: the job.
    :param base_url: ``scheme://host:port`` for download URLs.
    :param status: the status, if already computed.
    """
    store = core.store
    status = status or store.status(job)
    destination: dict[str, Any] = {"DataFormat": job.data_format}
    data: dict[str, Any] = {
        "JobId": job.job_id,
        "ExportSourceType": job.source_type,
        "JobStatus": status,
        "ExportDestination": destination,
        "ExportDataSource": to_wire(job.params["ExportDataSource"]),
        "CreatedTimestamp": job.created_wall,
    }
    completed = store.completed_wall(job, status)
    if completed is not None:
        data["CompletedTimestamp"] = completed
    if status == "COMPLETED" and completed is not None:
        destination["S3Url"] = core.signer.sign(base_url, f"/_exports/{job.job_id}/{job.file_name(completed)}")
        export = store.export_file(job)
        data["Statistics"] = {"ProcessedRecordsCount": export.processed}
        if core.options.exported_records_count:
            data["Statistics"]["ExportedRecordsCount"] = export.records
    elif status == "FAILED":
        data["FailureInfo"] = {
            "ErrorMessage": job.failure_message,
            "FailedRecordsS3Url": core.signer.sign(base_url, f"/_exports/{job.job_id}/{FAILED_RECORDS_FILE}"),
        }
    return data


def summary_to_wire(core: EmulatorCore, job: Job, status: str) -> dict[str, Any]:
    """
    A ListExportJobs item.

    :param core: the emulator.
    :param job: the job.
    :param status: its status.
    """
    item: dict[str, Any] = {
        "JobId": job.job_id,
        "ExportSourceType": job.source_type,
        "JobStatus": status,
        "CreatedTimestamp": job.created_wall,
    }
    completed = core.store.completed_wall(job, status)
    if completed is not None:
        item["CompletedTimestamp"] = completed
    return item


# -- API handlers ----------------------------------------------------------------------------
CORE_KEY: web.AppKey[EmulatorCore] = web.AppKey("core", EmulatorCore)
Handler = Callable[[web.Request, EmulatorCore], Awaitable[web.StreamResponse]]


async def _read_json(request: web.Request) -> Any:
    """
    The request's JSON body (``{}`` when empty).

    :param request: the request.
    """
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(f"The request body is not valid JSON: {exc}") from exc


def _abort(request: web.Request) -> web.Response:
    """
    Drop the connection without a response.

    :param request: the request.
    """
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def api(operation: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """
    Wrap an operation handler with counting, fault injection and modeled-error encoding.

    :param operation: the operation name.
    :param handler: the handler.
    """

    async def wrapped(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE_KEY]
        stats = core.stats
        stats.count(operation, "requests")
        latency = core.faults.config.latency
        if latency:
            await asyncio.sleep(latency)
        if operation in core.faults.config.deny_operations:
            stats.count(operation, "client_errors")
            return error_response(
                "AccessDeniedException",
                f"User is not authorized to perform: ses:{operation} (emulator fault injection)",
            )
        decision = core.faults.api_decision(operation)
        if decision == "reset":
            stats.count(operation, "resets")
            return _abort(request)
        if decision == "throttle":
            stats.count(operation, "throttled")
            return error_response("TooManyRequestsException", "Rate exceeded (emulator fault injection)")
        if decision in ("error", "storm_error"):
            stats.count(operation, "server_errors")
            status = core.faults.fail_status if decision == "storm_error" else core.faults.config.error_status
            code = "ServiceUnavailable" if status == 503 else "InternalFailure"
            return error_response(code, f"{code} (emulator fault injection)")
        try:
            response = await handler(request, core)
        except ValidationFailed as exc:
            stats.count(operation, "client_errors")
            return error_response("BadRequestException", str(exc))
        except JobError as exc:
            stats.count(operation, "throttled" if exc.code == "TooManyRequestsException" else "client_errors")
            if exc.code == "NotFoundException" and core.options.not_found_style == "400":
                return error_response("BadRequestException", INVALID_JOB_ID)
            return error_response(exc.code, exc.message)
        stats.count(operation, "succeeded")
        return response

    return wrapped


def _base_url(request: web.Request) -> str:
    """
    ``scheme://host[:port]`` as the client addressed us.

    :param request: the request.
    """
    return f"{request.scheme}://{request.host}"


async def create_export_job(request: web.Request, core: EmulatorCore) -> web.StreamResponse:
    """
    CreateExportJob: validate, check VDM is enabled, rate-limit, check the unfinished-job limit, create.

    The limit counts unfinished jobs of the request's source type (real SES's message names it).

    :param request: the request.
    :param core: the emulator.
    """
    body = await _read_json(request)
    params = validate_request("CreateExportJob", body)
    if not core.options.vdm_enabled:
        raise JobError("BadRequestException", VDM_DISABLED)
    if core.create_bucket is not None and not core.create_bucket.take():
        raise JobError(
            "TooManyRequestsException",
            f"Too many requests: CreateExportJob is limited to {core.create_bucket.rate:g} call(s) per second.",
        )
    source_type = source_type_of(params)
    limit = core.options.max_unfinished_jobs
    if limit is not None and core.store.active_count(source_type) >= limit:
        raise JobError(
            "LimitExceededException",
            f"There are too many <{source_type}> export jobs running - either cancel one of the jobs or wait for it "
            "to complete before resubmitting.",
        )
    job = core.store.create(params, body)
    core.stats.jobs_created += 1
    return _json({"JobId": job.job_id})


async def get_export_job(request: web.Request, core: EmulatorCore) -> web.StreamResponse:
    """
    GetExportJob.

    :param request: the request.
    :param core: the emulator.
    """
    params = validate_request("GetExportJob", {}, {"JobId": request.match_info["JobId"]})
    job = core.store.get(params["JobId"])
    response = _json(job_to_wire(core, job, _base_url(request)))
    core.store.count_read(job, "get")
    return response


async def list_export_jobs(request: web.Request, core: EmulatorCore) -> web.StreamResponse:
    """
    ListExportJobs: newest first, paginated, filtered.

    :param request: the request.
    :param core: the emulator.
    """
    params = validate_request("ListExportJobs", await _read_json(request))
    page, token = core.store.list_jobs(
        params.get("PageSize"), params.get("NextToken"), params.get("ExportSourceType"), params.get("JobStatus")
    )
    data: dict[str, Any] = {"ExportJobs": [summary_to_wire(core, job, status) for job, status in page]}
    for job, _ in page:
        core.store.count_read(job, "list")
    if token:
        data["NextToken"] = token
    return _json(data)


async def cancel_export_job(request: web.Request, core: EmulatorCore) -> web.StreamResponse:
    """
    CancelExportJob: unfinished → CANCELLED; finished → BadRequestException.

    :param request: the request.
    :param core: the emulator.
    """
    params = validate_request("CancelExportJob", await _read_json(request), {"JobId": request.match_info["JobId"]})
    core.store.cancel(params["JobId"])
    return _json({})


async def unknown_operation(request: web.Request) -> web.StreamResponse:
    """
    Any other SES v2 route: a rest-json ``UnknownOperationException``.

    :param request: the request.
    """
    response = error_response(
        "UnknownOperationException",
        f"{request.method} {request.path} is not emulated: only CreateExportJob, GetExportJob, ListExportJobs "
        "and CancelExportJob are.",
    )
    response.set_status(404)
    return response


# -- downloads -------------------------------------------------------------------------------
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """
    Parse a single ``Range: bytes=a-b`` header.

    :param header: the header value.
    :param size: the object size.
    :returns: ``(first, last)`` inclusive, ``None`` for no/ignored range, ``False`` if unsatisfiable.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first_s, last_s = match.groups()
    if not first_s:
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None
    if first >= size:
        return False
    return first, min(last, size - 1)


async def download(request: web.Request) -> web.StreamResponse:
    """
    GET/HEAD of an export (or failed-records) file by pre-signed-style URL, with Range support.

    :param request: the request.
    """
    core = request.app[CORE_KEY]
    stats = core.stats.downloads
    stats["requests"] += 1
    faults = core.faults.config
    if faults.download_body is not None:  # something in S3's place answers, whatever was asked
        stats["ok"] += 1
        return web.Response(
            body=faults.download_body.encode(), headers={"Content-Type": faults.download_content_type or "text/html"}
        )
    problem = core.signer.check(request.path, request.query)
    if problem is not None:
        stats["denied"] += 1
        return _s3_error(403, problem[0], problem[1], request.path)
    job_id, name = request.match_info["job_id"], request.match_info["file_name"]
    try:
        job = core.store.get(job_id)
    except JobError:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", request.path)
    status = core.store.status(job)
    completed = core.store.completed_wall(job, status)
    export: ExportFile
    if status == "COMPLETED" and completed is not None and name == job.file_name(completed):
        export = core.store.export_file(job)
    elif name == FAILED_RECORDS_FILE and status == "FAILED":
        export = FailedRecordsFile()
    else:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", request.path)
    size = export.size
    headers = {
        "ETag": export.etag(f"{core.options.seed}:{job_id}:{name}"),
        "Accept-Ranges": "bytes",
        "Content-Type": core.faults.config.download_content_type or export.content_type,
        "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
    }
    wanted = parse_range(request.headers.get("Range"), size)
    if wanted is False:
        return _s3_error(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
            request.path,
            {"Content-Range": f"bytes */{size}"},
        )
    status_code = 200
    first, last = 0, size - 1
    if isinstance(wanted, tuple):
        first, last = wanted
        status_code = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = last - first + 1 if size else 0
    response = web.StreamResponse(status=status_code, headers=headers)
    response.content_length = length
    if core.faults.config.download_latency:
        await asyncio.sleep(core.faults.config.download_latency)
    await response.prepare(request)
    if request.method == "HEAD" or length == 0:
        await response.write_eof()
        stats["ok"] += 1
        return response
    drop_after = core.faults.config.download_drop_after
    sent = 0
    for chunk in export.iter_range(first, last):
        if drop_after is not None and sent + len(chunk) >= drop_after:
            await response.write(chunk[: max(0, drop_after - sent)])
            stats["bytes"] += max(0, drop_after - sent)
            stats["dropped"] += 1
            await asyncio.sleep(0.01)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write(chunk)
        sent += len(chunk)
        stats["bytes"] += len(chunk)
    await response.write_eof()
    stats["ok"] += 1
    return response


# -- control API -----------------------------------------------------------------------------
def control_route(op: ControlOperation) -> Callable[[web.Request], Awaitable[web.Response]]:
    """
    The handler of one control operation: parameters from the path and the JSON body, JSON result,
    errors as ``{"error": ..., "message": ...}`` (404 for an unknown job, 400 otherwise).

    :param op: the operation.
    """

    async def handle(request: web.Request) -> web.Response:
        core = request.app[CORE_KEY]
        try:
            body = await _read_json(request) if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("The request body must be a JSON object of parameters.")
            result = op.invoke(core, {**body, **request.match_info})
        except JobError as exc:
            status = 404 if exc.code == "NotFoundException" else 400
            return web.json_response({"error": exc.code, "message": exc.message}, status=status)
        except (ValueError, TypeError, ValidationFailed) as exc:
            return web.json_response({"error": "BadRequest", "message": str(exc)}, status=400)
        return web.json_response(op.to_json(result))

    return handle


def build_app(core: EmulatorCore) -> web.Application:
    """
    The aiohttp application for ``core``: the four API operations, downloads, and one JSON control
    route per control operation (``GET /_emulator/stats``, ``POST /_emulator/advance-after``, ...; see
    :data:`~ses_export_emulator.operations.OPERATIONS`).

    :param core: the emulator state.
    """
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[CORE_KEY] = core
    r = app.router
    r.add_post("/v2/email/export-jobs", api("CreateExportJob", create_export_job))
    r.add_get("/v2/email/export-jobs/{JobId}", api("GetExportJob", get_export_job), allow_head=False)
    r.add_post("/v2/email/list-export-jobs", api("ListExportJobs", list_export_jobs))
    r.add_put("/v2/email/export-jobs/{JobId}/cancel", api("CancelExportJob", cancel_export_job))
    r.add_route("*", "/v2/{tail:.*}", unknown_operation)
    r.add_get("/_exports/{job_id}/{file_name}", download)
    for op in OPERATIONS.values():
        r.add_route(op.http_method, op.path, control_route(op))
    return app
