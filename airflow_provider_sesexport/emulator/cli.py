"""``ses-export-emulator``: run the emulator in the foreground until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_sesexport.emulator.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, NonLoopbackRefused
from airflow_provider_sesexport.emulator.control import SesExportEmulator
from airflow_provider_sesexport.emulator.faults import FaultConfig


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="ses-export-emulator",
        description="Local Amazon SES v2 export-job service (CreateExportJob, GetExportJob, ListExportJobs, "
        "CancelExportJob) for boto3/aiobotocore clients via endpoint_url.",
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
    p.add_argument("--max-active-jobs", type=int, default=None, help="unfinished jobs before LimitExceeded")
    p.add_argument("--url-expiry-seconds", type=int, default=300, help="nominal download URL lifetime")
    faults = p.add_argument_group("fault injection (API operations)")
    faults.add_argument("--api-rate-limit", type=float, default=None, help="API requests/s before 429s")
    faults.add_argument("--error-rate", type=float, default=0.0, help="probability of a 5xx answer")
    faults.add_argument("--error-status", type=int, choices=(500, 503), default=500, help="status of injected 5xx")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    faults.add_argument("--reset-rate", type=float, default=0.0, help="probability of resetting the connection")
    faults.add_argument("--throttle-all-seconds", type=float, default=None, help="429 storm for N s from start")
    faults.add_argument("--fail-all-seconds", type=float, default=None, help="503 storm for N s from start")
    faults.add_argument(
        "--deny-operation",
        action="append",
        default=[],
        metavar="OPERATION",
        help="answer this operation with 403 AccessDeniedException (repeatable), e.g. ListExportJobs",
    )
    downloads = p.add_argument_group("fault injection (downloads)")
    downloads.add_argument("--download-drop-after", type=int, default=None, help="drop downloads after K bytes")
    downloads.add_argument("--download-latency", type=float, default=0.0, help="seconds before a download starts")
    downloads.add_argument("--expire-urls-immediately", action="store_true", help="issue already-expired URLs")
    p.add_argument("--fail-next", type=int, default=0, help="make the next N jobs FAIL")
    p.add_argument("--quiet", action="store_true", help="print only the endpoint and the export line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator until SIGINT / SIGTERM.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the process exit code.
    """
    args = build_parser().parse_args(argv)
    faults = FaultConfig(
        api_rate_limit=args.api_rate_limit,
        error_rate=args.error_rate,
        error_status=args.error_status,
        latency=args.latency,
        reset_rate=args.reset_rate,
        download_drop_after=args.download_drop_after,
        download_latency=args.download_latency,
        expire_urls_immediately=args.expire_urls_immediately,
        deny_operations=tuple(args.deny_operation),
    )
    rules: list[Any] = [{"action": "fail", "count": args.fail_next}] if args.fail_next else []
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
            max_active_jobs=args.max_active_jobs,
            region=args.region,
            allow_non_loopback=args.allow_non_loopback,
            faults=faults,
            rules=rules,
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
        if args.throttle_all_seconds:
            emu.throttle_all(args.throttle_all_seconds)
        if args.fail_all_seconds:
            emu.fail_all(args.fail_all_seconds)
        print(f"SES v2 export-job emulator listening on {emu.endpoint_url}")
        print(f"export AIRFLOW_CONN_AWS_DEFAULT='{emu.airflow_conn_json()}'")
        if not args.quiet:
            print(f"export AWS_DEFAULT_REGION={emu.region} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
            print(f"control API: {emu.endpoint_url}/_emulator/stats  (options: {json.dumps(faults.to_dict())})")
            print("Press Ctrl+C to stop.")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        emu.stop()
    return 0
