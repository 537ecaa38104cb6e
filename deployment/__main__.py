"""``python -m deployment up|down|test --image IMAGE``: the MWAA-shaped Airflow of ``make deployment``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from deployment.cluster import REPO, down, state_dir, up

#: The fault drills' DAGs (``tests/deployment/test_drills.py``), deployed beside the examples by ``test`` only.
DRILL_DAGS = REPO / "tests" / "deployment" / "dags"
#: The deployed-trigger benchmark's DAGs (``benchmarks/deployed_triggers.py``), whose small-N run is a test too.
BENCH_DAGS = REPO / "benchmarks" / "deployed_dags"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "test"))
    parser.add_argument("--image", required=True, help="the MWAA image, e.g. 3.3.1")
    args, pytest_args = parser.parse_known_args(argv)  # the rest goes to pytest (test)
    if args.action == "up":
        up(args.image)
        return 0
    if args.action == "down":
        down(args.image)
        return 0
    try:
        up(args.image, extra_dag_folders=(DRILL_DAGS, BENCH_DAGS))
        env = {**os.environ, "SESEXPORT_DEPLOYMENT_STATE": str(state_dir(args.image))}
        command = [sys.executable, "-m", "pytest", "tests/deployment", "-p", "no:cacheprovider", *pytest_args]
        return subprocess.run(command, cwd=REPO, env=env).returncode
    finally:
        down(args.image)


if __name__ == "__main__":
    sys.exit(main())
