"""The deployed-trigger benchmark (``benchmarks/deployed_triggers.py``) at a small N, as a test: N mapped deferrable
``SesExportJobSensor`` waits held in the deployment's two real triggerers all succeed, and the waits of a triggerer
share one poller: per poll cycle it makes at most 2 + (ListExportJobs pages) SES calls, however many waits it holds.

The benchmark's DAGs (``benchmarks/deployed_dags``) are deployed beside the examples by ``deploy-test``; the
deployment's emulator keeps real SES's limits, so N stays under the 20 unfinished metrics jobs SES allows."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.deployed_triggers import run_mode
from tests.deployment.conftest import Aws, State

#: Mapped waits: more than one triggerer's worth and more than one per worker slot, within SES's 20 unfinished jobs.
N = 10


def test_mapped_deferred_waits_share_one_poller_per_triggerer(aws: Aws, state: State) -> None:
    room = 20 - len(aws.unfinished_jobs("METRICS_DATA"))
    assert room >= N, f"only {room} unfinished metrics jobs allowed: an earlier test left jobs running"

    result = run_mode(Path(os.environ["SESEXPORT_DEPLOYMENT_STATE"]), "ours", N, samples=1)

    print(f"\ndeployed_triggers ({state.image}, N={N}): {result}")
    assert result["run_state"] == "success" and result["succeeded"] == N, result
    assert result["calls_per_cycle"] <= 2 + result["pages"], result
