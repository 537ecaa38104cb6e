"""
N concurrent export-job waits: SesExportJobTrigger (shared client, batched polls) vs the anchor.

The anchor is what the Amazon provider offers out of the box: an ``AwsBaseWaiterTrigger`` subclass
using the same ``export_job_complete`` waiter JSON (one aiobotocore session and client per wait, one
GetExportJob per wait per interval). Both run against the SES export-job emulator (in its own
process, on 127.0.0.1) in the same run, each in a fresh process, and the script prints for each:

* RSS per wait: marginal (the RSS slope from N/10 to N running waits) and including every fixed
  cost ((RSS with N waits - RSS before the first) / N), after one warm-up client was opened and closed;
* CPU to start all waits: process CPU time until every wait has had its first status check;
* worst event-loop stall: the longest a 10 ms ticker on the triggers' event loop was late;
* API calls per poll cycle, counted by the emulator while no job finishes;
* detection latency: from the emulator completing a job to its trigger's event (worst of a few);

then our/anchor ratios. Usage::

    python benchmarks/trigger_scale.py            # N = 1000, 5 s poll interval
    python benchmarks/trigger_scale.py --n 200 --interval 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import multiprocessing as mp
import os
import random
import resource
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCE: dict[str, Any] = {
    "MetricsDataSource": {
        "Dimensions": {"ISP": ["Gmail"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc),
        "EndDate": dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc),
    }
}


# -- the emulator, in its own process -----------------------------------------------------------------
def _serve_emulator(queue: Any, stop: Any) -> None:
    from ses_export_emulator import SesExportEmulator

    # N concurrent waits: far more unfinished jobs than real SES's 20 per source type
    with SesExportEmulator(port=0, create_rate_limit=None, max_unfinished_jobs=None) as emu:
        queue.put((emu.endpoint_url, emu.airflow_conn_json()))
        stop.wait()


def control(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the emulator's control API."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def api_calls(endpoint: str) -> dict[str, int]:
    ops = control(endpoint, "GET", "stats")["operations"]
    return {op: ops[op]["requests"] for op in ("GetExportJob", "ListExportJobs")}


def create_jobs(endpoint: str, n: int) -> list[str]:
    import boto3
    from botocore.config import Config

    # an emulator with SES's create rate (1 per nominal second) throttles a fast loop: botocore's standard mode
    # retries TooManyRequestsException with backoff
    client = boto3.client(
        "sesv2",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "max_attempts": 20}),
    )
    return [
        client.create_export_job(ExportDataSource=SOURCE, ExportDestination={"DataFormat": "CSV"})["JobId"]
        for _ in range(n)
    ]


# -- one measured run (fresh process) --------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def make_anchor_class() -> Any:
    from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

    from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook

    class AnchorExportJobTrigger(AwsBaseWaiterTrigger):
        """The Amazon provider's pattern: one client per wait, one GetExportJob per wait per interval."""

        def __init__(self, *, job_id: str, waiter_delay: int, waiter_max_attempts: int, aws_conn_id: str) -> None:
            super().__init__(
                serialized_fields={"job_id": job_id},
                waiter_name="export_job_complete",
                waiter_args={"JobId": job_id},
                failure_message="SES export job failed",
                status_message="SES export job status",
                status_queries=["JobStatus"],
                return_key="job_id",
                return_value=job_id,
                waiter_delay=waiter_delay,
                waiter_max_attempts=waiter_max_attempts,
                aws_conn_id=aws_conn_id,
            )

        def hook(self) -> SesExportJobHook:
            return SesExportJobHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)

    return AnchorExportJobTrigger


def measure(mode: str, endpoint: str, conn_json: str, job_ids: list[str], args: Any, out: Any) -> None:
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = conn_json
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # the anchor logs one line per wait per poll
    logging.disable(logging.INFO)
    import aiobotocore.session  # noqa: F401  (imported before the baseline, for both)

    from airflow_provider_sesexport.triggers import poller as poller_mod
    from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger

    anchor_class = make_anchor_class()
    n, interval = len(job_ids), args.interval

    def make(job_id: str) -> Any:
        if mode == "ours":
            return SesExportJobTrigger(job_id=job_id, poll_interval=interval, aws_conn_id="aws_default")
        return anchor_class(job_id=job_id, waiter_delay=interval, waiter_max_attempts=100000, aws_conn_id="aws_default")

    async def consume(trigger: Any) -> Any:
        async for event in trigger.run():
            return event
        return None

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        stall = {"worst": 0.0, "quiet_after": 0.0}

        async def ticker() -> None:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                if before > stall["quiet_after"]:  # ignore ticks spanning the harness's own gc.collect()
                    stall["worst"] = max(stall["worst"], time.perf_counter() - before - 0.01)

        def settle_rss() -> int:
            gc.collect()
            stall["quiet_after"] = time.perf_counter()
            return rss_bytes()

        async def ctl(method: str, path: str) -> Any:
            return await loop.run_in_executor(None, control, endpoint, method, path)

        async def all_checked(count: int) -> None:
            """Until ``count`` waits have had their first status check."""
            if mode == "ours":
                first = sum(p.cycles for p in poller_mod.active_pollers().values())
                while sum(p.cycles for p in poller_mod.active_pollers().values()) < first + 1:
                    await asyncio.sleep(0.005)
            else:
                while (await ctl("GET", "stats"))["operations"]["GetExportJob"]["requests"] < count:
                    await asyncio.sleep(0.05)

        # warm-up, the same for both: open and close one client, so one-time imports (aiohttp, aiobotocore
        # submodules) are not counted as the cost of the waits
        client, close = await poller_mod.open_client(poller_mod.ClientSpec.of("aws_default", None, None, None))
        await client.list_export_jobs(PageSize=1)
        await close()
        await ctl("POST", "stats/reset")
        rss0 = settle_rss()
        tick = asyncio.ensure_future(ticker())
        tasks: dict[str, asyncio.Future[Any]] = {}
        first_batch = max(1, n // 10)
        cpu0 = time.process_time()
        # a tenth of the waits first (this opens the shared client), then the rest: the RSS slope between
        # the two is the marginal cost of one more wait; the total includes every fixed cost
        for batch in (job_ids[:first_batch], job_ids[first_batch:]):
            for job_id in batch:
                tasks[job_id] = asyncio.ensure_future(consume(make(job_id)))
            await all_checked(len(tasks))
            if len(tasks) == first_batch:
                cpu_paused = time.process_time()
                await asyncio.sleep(interval)
                rss1 = settle_rss()
                cpu0 += time.process_time() - cpu_paused
        cpu_start = time.process_time() - cpu0
        await asyncio.sleep(interval)
        rss2 = settle_rss()

        # API calls per poll cycle while nothing finishes
        window_cycles = 3
        if mode == "ours":
            # count exactly whole cycles: from just after one ends to just after the third next one ends
            (poller,) = poller_mod.active_pollers().values()
            done = poller.cycles_completed
            while poller.cycles_completed == done:
                await asyncio.sleep(0.002)
            calls0 = await loop.run_in_executor(None, api_calls, endpoint)
            done = poller.cycles_completed
            while poller.cycles_completed < done + window_cycles:
                await asyncio.sleep(0.002)
            calls1 = await loop.run_in_executor(None, api_calls, endpoint)
        else:
            calls0 = await loop.run_in_executor(None, api_calls, endpoint)
            await asyncio.sleep(window_cycles * interval)
            calls1 = await loop.run_in_executor(None, api_calls, endpoint)
        per_cycle = (sum(calls1.values()) - sum(calls0.values())) / window_cycles

        # detection latency: complete a few jobs at random phases of the poll cycle
        latencies = []
        for job_id in random.Random(1).sample(job_ids, args.latency_samples):
            await asyncio.sleep(random.uniform(0, interval))
            await ctl("POST", f"jobs/{job_id}/complete")
            completed_at = time.perf_counter()
            await asyncio.wait_for(tasks[job_id], interval * 3 + 10)
            latencies.append(time.perf_counter() - completed_at)

        tick.cancel()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), tick, return_exceptions=True)
        return {
            "rss_per_wait_kb": (rss2 - rss1) / (n - first_batch) / 1024,
            "rss_total_per_wait_kb": (rss2 - rss0) / n / 1024,
            "cpu_start_s": cpu_start,
            "worst_stall_ms": stall["worst"] * 1000,
            "calls_per_cycle": per_cycle,
            "pages": -(-n // 100),
            "latency_max_s": max(latencies),
            "latency_mean_s": sum(latencies) / len(latencies),
        }

    out.put(asyncio.run(main()))


def run_mode(ctx: Any, mode: str, endpoint: str, conn_json: str, job_ids: list[str], args: Any) -> dict[str, Any]:
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(mode, endpoint, conn_json, job_ids, args, queue))
    proc.start()
    result = queue.get(timeout=args.n * 2 + 600)
    proc.join(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="concurrent waits (default %(default)s)")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval in seconds (default %(default)s)")
    parser.add_argument("--latency-samples", type=int, default=5, help="jobs completed to time detection")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    emulator = ctx.Process(target=_serve_emulator, args=(queue, stop), daemon=True)
    emulator.start()
    endpoint, conn_json = queue.get(timeout=60)
    try:
        control(endpoint, "POST", "rules", {"action": "hang"})  # every job stays PROCESSING until completed
        results = {}
        for mode in ("ours", "anchor"):
            job_ids = create_jobs(endpoint, args.n)
            results[mode] = run_mode(ctx, mode, endpoint, conn_json, job_ids, args)
            for job_id in job_ids:  # out of the in-flight lists before the next run
                control(endpoint, "DELETE", f"jobs/{job_id}")
    finally:
        stop.set()
        emulator.join(10)

    ours, anchor = results["ours"], results["anchor"]
    print(
        f"trigger_scale: N={args.n} concurrent waits, poll interval {args.interval:g}s, Python {sys.version.split()[0]}"
    )
    rows = [
        ("RSS per wait, marginal (KB)", "rss_per_wait_kb", "{:.1f}"),
        ("RSS per wait, incl. fixed (KB)", "rss_total_per_wait_kb", "{:.1f}"),
        ("CPU to start all waits (s)", "cpu_start_s", "{:.3f}"),
        ("worst event-loop stall (ms)", "worst_stall_ms", "{:.1f}"),
        ("API calls per poll cycle", "calls_per_cycle", "{:.1f}"),
        ("detection latency, worst (s)", "latency_max_s", "{:.2f}"),
        ("detection latency, mean (s)", "latency_mean_s", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        a, b = ours[key], anchor[key]
        ratio = a / b if b else float("nan")
        print(f"{label:32s} ours {fmt.format(a):>10s}   anchor {fmt.format(b):>10s}   ours/anchor {ratio:.3f}")
    print(
        f"targets: RSS/wait <= 20 KB and >= 20x below anchor; calls/cycle <= 2 + pages ({ours['pages']}) + finished; "
        f"worst stall < 100 ms; detection <= interval + 1 s ({args.interval + 1:g} s)"
    )


if __name__ == "__main__":
    main()
