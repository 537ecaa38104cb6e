"""
``ses-export-emulator``: run the emulator in the foreground until SIGINT / SIGTERM, or
``ses-export-emulator control OPERATION ...``: run one control operation on a running emulator.

Both take their control flags from the control-operation table
(:data:`~ses_export_emulator.operations.OPERATIONS`): the start-up fault flags are the
parameters of ``set_faults``, and each ``control`` subcommand is one row, sent to its HTTP route.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from ses_export_emulator.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, NonLoopbackRefused
from ses_export_emulator.control import SesExportEmulator
from ses_export_emulator.operations import OPERATIONS, ControlOperation, Param

DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def add_param(parser: argparse.ArgumentParser | Any, param: Param) -> None:
    """
    Add the flag of one operation parameter; a flag not given leaves the parameter out.

    :param parser: the parser or argument group.
    :param param: the parameter.
    """
    base, choices, _, many = param.spec
    options: dict[str, Any] = {
        "dest": param.name,
        "default": argparse.SUPPRESS,
        "help": param.help.replace("``", "") or None,
    }
    if param.required:
        options["required"] = True
    if base is bool and not many:
        options["action"] = argparse.BooleanOptionalAction
    else:
        options["type"] = base
        if choices is not None:
            options["choices"] = choices
        else:
            options["metavar"] = param.name.upper()
        if many:
            options["action"] = "append"
    parser.add_argument(param.cli_flag, **options)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the server."""
    p = argparse.ArgumentParser(
        prog="ses-export-emulator",
        description="Local Amazon SES v2 export-job service (CreateExportJob, GetExportJob, ListExportJobs, "
        "CancelExportJob) for boto3/aiobotocore clients via endpoint_url.",
        epilog="Control a running emulator with 'ses-export-emulator control OPERATION ...' "
        "(see 'ses-export-emulator control --help').",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port, 0 for a free one (default %(default)s)")
    p.add_argument("--allow-non-loopback", action="store_true", help="allow binding a non-loopback address")
    p.add_argument("--region", default=DEFAULT_REGION, help="region for the connection line (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for ids, files and faults (default %(default)s)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply all durations (0.01 = 100x faster)")
    p.add_argument("--created-seconds", type=float, default=1.0, help="nominal seconds in CREATED")
    p.add_argument("--processing-seconds", type=float, default=2.0, help="nominal seconds in PROCESSING")
    p.add_argument("--row-multiplier", type=int, default=1, help="multiply export files' row counts")
    p.add_argument(
        "--create-rate", type=float, default=1.0, help="CreateExportJob calls per nominal second; 0 = unlimited"
    )
    p.add_argument(
        "--max-unfinished-jobs",
        type=int,
        default=20,
        help="unfinished jobs per source type before LimitExceeded; 0 = unlimited (default %(default)s)",
    )
    p.add_argument(
        "--vdm-enabled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="whether the account has VDM enabled; --no-vdm-enabled refuses every create ('control set-vdm')",
    )
    p.add_argument("--show-created", action="store_true", help="report CREATED for new jobs (real SES does not)")
    p.add_argument(
        "--not-found-style",
        choices=("400", "404"),
        default="400",
        help="unknown JobId: 400 'Invalid JobId' as real SES, or 404 NotFoundException as the model",
    )
    p.add_argument(
        "--exported-records-count",
        action="store_true",
        help="also report Statistics.ExportedRecordsCount (real SES does not)",
    )
    p.add_argument("--default-page-size", type=int, default=100, help="ListExportJobs page size without PageSize")
    p.add_argument("--url-expiry-seconds", type=int, default=300, help="nominal download URL lifetime")
    faults = p.add_argument_group("faults from the start (the parameters of 'control set-faults')")
    for param in OPERATIONS["set_faults"].params:
        add_param(faults, param)
    p.add_argument("--fail-next", type=int, default=0, help="make the next N jobs FAIL ('control fail-next')")
    p.add_argument("--quiet", action="store_true", help="print only the endpoint and the export line")
    return p


def build_control_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ses-export-emulator control``: one subcommand per control operation."""
    p = argparse.ArgumentParser(
        prog="ses-export-emulator control",
        description="Run one control operation on a running emulator through its HTTP control API.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint", default=DEFAULT_ENDPOINT, help="the emulator's endpoint URL (default %(default)s)"
    )
    sub = p.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    for op in OPERATIONS.values():
        parser = sub.add_parser(
            op.cli_name,
            parents=[common],
            help=op.description,
            description=f"{op.description} ({op.http_method} {op.path})",
        )
        for param in op.params:
            add_param(parser, param)
    return p


def request_of(op: ControlOperation, endpoint: str, values: dict[str, Any]) -> urllib.request.Request:
    """
    The HTTP request running ``op`` with ``values``: path parameters in the path, the rest as JSON body.

    :param op: the operation.
    :param endpoint: the emulator's endpoint URL.
    :param values: parameter values by name.
    """
    body = dict(values)
    path = re.sub(r"\{(\w+)\}", lambda m: quote(str(body.pop(m.group(1))), safe=""), op.path)
    data = None if op.http_method == "GET" else json.dumps(body).encode()
    headers = {} if data is None else {"Content-Type": "application/json"}
    return urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=op.http_method, headers=headers)


def control(argv: Sequence[str]) -> int:
    """
    ``ses-export-emulator control OPERATION [--param value ...]``: print the JSON answer.

    :param argv: the arguments after ``control``.
    :returns: 0 on success, 1 when the emulator refused the operation, 2 when it could not be reached.
    """
    args = build_control_parser().parse_args(argv)
    op = OPERATIONS[args.operation.replace("-", "_")]
    values = {p.name: getattr(args, p.name) for p in op.params if hasattr(args, p.name)}
    try:
        with urllib.request.urlopen(request_of(op, args.endpoint, values), timeout=30) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        print(
            f"ses-export-emulator control {op.cli_name}: {exc.code} {exc.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"ses-export-emulator control: cannot reach {args.endpoint}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator until SIGINT / SIGTERM (or, with ``control`` first, one control operation).

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the process exit code.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["control"]:
        return control(argv[1:])
    args = build_parser().parse_args(argv)
    fault_options = {p.name: getattr(args, p.name) for p in OPERATIONS["set_faults"].params if hasattr(args, p.name)}
    try:
        emu = SesExportEmulator(
            host=args.host,
            port=args.port,
            seed=args.seed,
            time_scale=args.time_scale,
            created_seconds=args.created_seconds,
            processing_seconds=args.processing_seconds,
            row_multiplier=args.row_multiplier,
            create_rate_limit=args.create_rate or None,
            url_expiry_seconds=args.url_expiry_seconds,
            max_unfinished_jobs=args.max_unfinished_jobs or None,
            vdm_enabled=args.vdm_enabled,
            show_created=args.show_created,
            not_found_style=args.not_found_style,
            exported_records_count=args.exported_records_count,
            default_page_size=args.default_page_size,
            region=args.region,
            allow_non_loopback=args.allow_non_loopback,
        )
        emu.start()
    except (NonLoopbackRefused, ValueError, OSError) as exc:
        print(f"ses-export-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        fault_state = emu.set_faults(**fault_options)
        if args.fail_next:
            emu.fail_next(args.fail_next)
        print(f"SES v2 export-job emulator listening on {emu.endpoint_url}")
        print(f"export AIRFLOW_CONN_AWS_DEFAULT='{emu.airflow_conn_json()}'")
        if not args.quiet:
            print(f"export AWS_DEFAULT_REGION={emu.region} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
            print(f"control API: {emu.endpoint_url}/_emulator/stats  (faults: {json.dumps(fault_state)})")
            print("Press Ctrl+C to stop.")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        emu.stop()
    return 0
