"""
N mapped deferrable waits in a real triggerer: ``SesExportJobSensor(deferrable=True)`` vs the anchor trigger.

Against an MWAA-shaped deployment (``deployment/``) with the benchmark DAGs (``benchmarks/deployed_dags``) and the
anchor trigger (``benchmarks/deployed_plugins/ses_bench_anchor.py``, :func:`benchmarks.trigger_scale.make_anchor_class`)
linked in. For each kind, one DAG run of N mapped waits on N emulator jobs held PROCESSING (a ``hang`` rule), then:

* RSS per wait: (RSS of both triggerers' process trees with N waits held - before the run) / N;
* API calls per poll cycle per triggerer: the emulator's GetExportJob + ListExportJobs counters over a window of
  whole poll intervals, divided by the cycles in it and by the triggerers holding waits;
* latency: from ``complete_job`` of a few jobs, one at a time, to their task instance's ``end_date``;

then every job is completed and every task must succeed. Each kind first runs ``--warmup`` uncounted waits, so that
the triggerers' first-wait imports count against neither. Usage (the image's venv; brings a deployment up and down)::

    .venv-mwaa-3.3.1/bin/python benchmarks/deployed_triggers.py --image 3.3.1 --n 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.trigger_scale import api_calls, control, create_jobs  # noqa: E402

DAGS = REPO / "benchmarks" / "deployed_dags"
PLUGIN = REPO / "benchmarks" / "deployed_plugins" / "ses_bench_anchor.py"
DAG_IDS = {"ours": "bench_ses_trigger_ours", "anchor": "bench_ses_trigger_anchor"}
POLL_INTERVAL = 5.0  # benchmarks/deployed_dags/ses_trigger_scale.py's POLL_INTERVAL
#: The benchmark's emulator: no limit on unfinished jobs (real SES: 20 per source type) nor on the create rate.
EMULATOR_OPTIONS = ("--max-unfinished-jobs", "0", "--create-rate", "0")
PAGE_SIZE = 100  # airflow_provider_sesexport.hooks.ses_export.UNFINISHED_PAGE_SIZE


def tree_rss_bytes(pid: int) -> int:
    """
    RSS of a process and all its descendants, from /proc.

    :param pid: the root process.
    """
    from deployment.services import descendants

    total = 0
    for current in (pid, *descendants(pid)):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


def triggerer_rss(state_dir: Path) -> dict[str, int]:
    """
    RSS of each triggerer's process tree (pids from the deployment's pid files).

    :param state_dir: the deployment's state folder.
    """
    from deployment.services import ProcessRecord

    return {
        path.stem: tree_rss_bytes(ProcessRecord.load(path).pid)
        for path in sorted((state_dir / "pids").glob("triggerer-*.pid"))
    }


def wait_states(api: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every mapped ``wait`` task instance of the run (paged)."""
    found: list[dict[str, Any]] = []
    while True:
        page = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=len(found))
        batch = page["task_instances"]
        found.extend(batch)
        if not batch or len(found) >= page["total_entries"]:
            return [ti for ti in found if ti["task_id"] == "wait"]


def _until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(1)
    return result


def _end(ti: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp()


def run_mode(state_dir: Path, mode: str, n: int, window_cycles: int = 4, samples: int = 3) -> dict[str, Any]:
    """
    One DAG run of ``n`` waits of one kind in a running deployment; returns its figures.

    :param state_dir: the deployment's state folder (``.deployment/<image>``).
    :param mode: ``ours`` or ``anchor``.
    :param n: mapped waits.
    :param window_cycles: poll intervals the API calls are counted over.
    :param samples: jobs completed one at a time to time completion -> task success.
    """
    from tests.deployment.conftest import AirflowApi, MetadataDb, State

    data = json.loads((state_dir / "state.json").read_text())
    api, db = AirflowApi(State(image=data["image"], data=data)), MetadataDb(data["database_url"])
    endpoint, dag_id = data["emulator_url"], DAG_IDS[mode]
    t0 = time.monotonic()
    try:
        control(endpoint, "POST", "rules", {"action": "hang", "count": n})
        job_ids = create_jobs(endpoint, n)
        rss0 = triggerer_rss(state_dir)
        api.unpause(dag_id)
        run_id = api.trigger(dag_id, dt.datetime.now(dt.timezone.utc), {"job_ids": job_ids})

        def all_assigned() -> bool:
            assert api.run(dag_id, run_id)["state"] != "failed"
            triggers = db.triggers(dag_id, run_id)
            return len(triggers) == n and all(t[2] is not None for t in triggers)

        _until(f"{n} waits of {dag_id} not all in a triggerer", all_assigned, 1800)
        deferred_s = time.monotonic() - t0
        triggerers = {t[2] for t in db.triggers(dag_id, run_id)}
        time.sleep(2 * POLL_INTERVAL)  # every wait has polled at least once
        rss1 = triggerer_rss(state_dir)

        calls0 = api_calls(endpoint)
        time.sleep(window_cycles * POLL_INTERVAL)
        calls1 = api_calls(endpoint)
        jobs = control(endpoint, "GET", "jobs")["jobs"]
        in_flight = sum(1 for j in jobs if j["JobStatus"] in ("CREATED", "PROCESSING"))
        per_cycle = sum(calls1[k] - calls0[k] for k in calls0) / window_cycles / len(triggerers)

        latencies = []
        for index, job_id in enumerate(job_ids[:samples]):  # map index i waits on job_ids[i]
            done_at = time.time()
            control(endpoint, "POST", f"jobs/{job_id}/complete")

            def succeeded(i: int = index) -> dict[str, Any] | None:
                return next((t for t in wait_states(api, dag_id, run_id) if t["map_index"] == i
                             and t["state"] == "success"), None)  # fmt: skip

            latencies.append(_end(_until(f"{dag_id}[{index}] did not succeed", succeeded, 600)) - done_at)
        for job_id in job_ids[samples:]:
            control(endpoint, "POST", f"jobs/{job_id}/complete")
        run = api.wait_for_run(dag_id, run_id, timeout=1800)
        states = [ti["state"] for ti in wait_states(api, dag_id, run_id)]
        return {
            "mode": mode,
            "n": n,
            "run_state": run["state"],
            "succeeded": states.count("success"),
            "triggerers": len(triggerers),
            "rss_per_wait_kb": (sum(rss1.values()) - sum(rss0.values())) / n / 1024,
            "calls_per_cycle": per_cycle,
            "in_flight": in_flight,
            "pages": math.ceil(in_flight / PAGE_SIZE),
            "latency_max_s": max(latencies),
            "latency_mean_s": sum(latencies) / len(latencies),
            "defer_all_s": deferred_s,
            "total_s": time.monotonic() - t0,
        }
    finally:
        control(endpoint, "DELETE", "rules")
        db.connection.close()


def report(ours: dict[str, Any], anchor: dict[str, Any]) -> str:
    """The printed table: absolute figures and our/anchor ratios."""
    lines = [f"deployed_triggers: N={ours['n']} mapped deferrable waits, poll interval {POLL_INTERVAL:g}s"]
    for label, key, fmt in (
        ("triggerer RSS per wait (KB)", "rss_per_wait_kb", "{:.1f}"),
        ("API calls per cycle per triggerer", "calls_per_cycle", "{:.2f}"),
        ("completion -> success, worst (s)", "latency_max_s", "{:.2f}"),
        ("completion -> success, mean (s)", "latency_mean_s", "{:.2f}"),
        ("all N deferred + assigned (s)", "defer_all_s", "{:.0f}"),
    ):
        a, b = ours[key], anchor[key]
        ratio = a / b if b else float("nan")
        lines.append(f"{label:36s} ours {fmt.format(a):>9s}   anchor {fmt.format(b):>9s}   ours/anchor {ratio:.3f}")
    lines.append(f"bound: ours calls/cycle/triggerer <= 2 + pages ({ours['pages']} for {ours['in_flight']} in flight)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="3.3.1", help="MWAA image (default %(default)s)")
    parser.add_argument("--n", type=int, default=200, help="mapped waits per kind (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=4, help="uncounted waits per kind first (default %(default)s)")
    args = parser.parse_args()
    from deployment.cluster import down, up

    dep = up(args.image, extra_dag_folders=(DAGS,), plugins=(PLUGIN,), emulator_options=EMULATOR_OPTIONS)
    try:
        # a few waits of each kind first, not counted: the triggerers import what both kinds use (aiobotocore,
        # the waiter model) at their first wait, which would count against whichever kind runs first
        for mode in ("ours", "anchor"):
            run_mode(dep.root, mode, args.warmup, window_cycles=1, samples=1)
        results = {mode: run_mode(dep.root, mode, args.n) for mode in ("ours", "anchor")}
    finally:
        down(args.image)
    print(report(results["ours"], results["anchor"]))
    for r in results.values():
        print(json.dumps(r))


if __name__ == "__main__":
    main()
