"""
What a DAG file pays at parse time to import our sensor and operators, against an Amazon provider sensor.

Both sides start from the same baseline, the Amazon provider's ``AwsBaseSensor`` and ``AwsBaseOperator``
modules (``airflow.providers.amazon.aws.sensors.base_aws``, ``...operators.base_aws``), which any DAG
using AWS operators loads anyway. Then:

* ours: the provider's sensor and operators, ``airflow_provider_sesexport.sensors.ses_export`` and
  ``...operators.ses_export`` (three operator classes and the hook);
* anchor: ``airflow.providers.amazon.aws.sensors.glue`` (``GlueJobSensor`` and the two Glue Data Quality
  sensors: three operator classes and their hooks and triggers).

A second row adds the copy operator's module (``...transfers.ses_export_to_s3``, a "transfer" in provider
terms), for a DAG that imports the whole pipeline; it is printed, not targeted.

Targets for the first row: ratio <= 1.0 on Airflow 3 (the newest stack) and <= 1.5 on Airflow 2 (MWAA 2.10.3).
The package imports its own modules at the top of each module, so a DAG file loads the hook's rules, the download
machinery and the triggers' modules too (only heavy third-party modules stay lazy). On Airflow 3 the anchor pays
for ``airflow.triggers.base`` as we do; on Airflow 2 the baseline has loaded it already, the anchor's figure is a
couple of milliseconds and every module of ours (about 0.1 ms each however small) weighs more in the ratio.

Each run is a fresh ``python -X importtime`` process; the figure is the sum of the *self* times of the
modules imported after the baseline (so nothing the baseline loaded is counted twice), median over
``--runs`` runs, ours and the anchor interleaved so background load hits both alike. Byte-code is
cached as on a real deployment (a temporary ``PYTHONPYCACHEPREFIX``, filled by one warm-up run per side
that is not counted). Run with the interpreter of the stack to measure, e.g.::

    python benchmarks/import_cost.py
    PYTHONPATH=$PWD .venv-mwaa-2.10.3/bin/python benchmarks/import_cost.py --runs 21
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = ("airflow.providers.amazon.aws.sensors.base_aws", "airflow.providers.amazon.aws.operators.base_aws")
OURS = ("airflow_provider_sesexport.sensors.ses_export", "airflow_provider_sesexport.operators.ses_export")
WITH_COPY = (*OURS, "airflow_provider_sesexport.transfers.ses_export_to_s3")
ANCHOR = ("airflow.providers.amazon.aws.sensors.glue",)
SIDES = {"ours": OURS, "ours + copy operator": WITH_COPY, "anchor": ANCHOR}
START, END = "--- import_cost: start ---", "--- import_cost: end ---"

# argv: the baseline modules, "--", the measured modules. The markers go to stderr, where -X importtime writes.
_PROBE = f"""
import sys
split = sys.argv.index("--")
for name in sys.argv[1:split]:
    __import__(name)
print({START!r}, file=sys.stderr, flush=True)
for name in sys.argv[split + 1:]:
    __import__(name)
print({END!r}, file=sys.stderr, flush=True)
"""


def measure(modules: tuple[str, ...], env: dict[str, str]) -> tuple[float, int]:
    """
    One fresh process: ``(self time in ms, module count)`` of what importing ``modules`` adds to the baseline.

    :param modules: the modules to import after the baseline.
    :param env: the subprocess environment.
    """
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _PROBE, *BASELINE, "--", *modules],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if out.returncode != 0:
        raise SystemExit(f"importing {', '.join(modules)} failed:\n{out.stderr[-4000:]}")
    lines = out.stderr.splitlines()
    counted = lines[lines.index(START) + 1 : lines.index(END)]
    # "import time: <self us> | <cumulative us> | <module>"; other stderr lines (warnings) are skipped.
    rows = [line.split(":", 1)[1].split("|") for line in counted if line.startswith("import time:")]
    names = {row[2].strip() for row in rows}
    missing = [m for m in modules if m not in names]
    if missing:
        raise SystemExit(f"{', '.join(missing)} already imported by the baseline: nothing to measure")
    return sum(int(row[0]) for row in rows) / 1000, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="measured runs per side (default %(default)s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-cost-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
            "PYTHONPYCACHEPREFIX": str(Path(tmp, "pycache")),
            "AIRFLOW_HOME": str(Path(tmp, "airflow")),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        runs_per_side = max(1, args.runs)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # without byte-code our modules would be compiled every run
        for modules in SIDES.values():  # warm-up: writes the byte-code
            measure(modules, env)
        runs: dict[str, list[tuple[float, int]]] = {side: [] for side in SIDES}
        for _ in range(runs_per_side):
            for side, modules in SIDES.items():
                runs[side].append(measure(modules, env))

    median = {side: statistics.median(ms for ms, _ in measured) for side, measured in runs.items()}
    anchor = median["anchor"]
    print(
        f"import_cost: Python {sys.version.split()[0]}, Airflow {version('apache-airflow')}, "
        f"Amazon provider {version('apache-airflow-providers-amazon')}; {runs_per_side} runs per side, median"
    )
    print(f"baseline: {' + '.join(BASELINE)}")
    for side, modules in SIDES.items():
        print(f"{side}: {', '.join(modules)} ({runs[side][0][1]} modules over the baseline)")
    print()
    print(f"{'import self time over baseline (ms)':<40} {'ours':>8} {'anchor':>8} {'ratio':>7}")
    for side in ("ours", "ours + copy operator"):
        print(f"{side:<40} {median[side]:>8.2f} {anchor:>8.2f} {median[side] / anchor:>7.2f}")
    airflow_2 = version("apache-airflow").split(".")[0] == "2"
    target = 1.5 if airflow_2 else 1.0
    ratio = median["ours"] / anchor
    print(
        f"target: ratio <= {target} for ours (the sensor and operators) on Airflow {'2' if airflow_2 else '3'}: "
        f"{'met' if ratio <= target else 'NOT met'}; the copy operator's row is for information"
    )


if __name__ == "__main__":
    main()
