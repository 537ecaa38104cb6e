"""
docs/running_examples.rst: every shell command on the page, run as the page gives it (the page cannot drift).

The page's ``bash`` blocks are read from the file: the emulator block is started as a server (on a free port instead
of 4590, the only change), the printed ``export`` lines must be the ones the page shows, and the remaining blocks
run in order in one bash session from the repository's root with ``set -euo pipefail``. ``make demo`` is checked to
run scripts/demo.py, which tests/e2e/test_demo.py runs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGE = REPO / "docs" / "running_examples.rst"
PORT = "4590"


def code_blocks(text: str) -> dict[str, tuple[str, str]]:
    """``name -> (language, code)`` of every ``.. code-block::`` with a ``:name:`` on the page."""
    blocks: dict[str, tuple[str, str]] = {}
    pattern = re.compile(r"^\.\. code-block:: (\w+)\n((?:   :\w+:.*\n)*)\n((?:(?:   .*)?\n)+)", re.M)
    for match in pattern.finditer(text):
        name = re.search(r":name: (\S+)", match.group(2))
        code = "\n".join(line[3:] for line in match.group(3).splitlines()).strip("\n")
        if name:
            blocks[name.group(1)] = (match.group(1), code + "\n")
    return blocks


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_the_page_has_the_blocks_this_test_runs() -> None:
    blocks = code_blocks(PAGE.read_text())
    bash = [name for name, (language, _) in blocks.items() if language == "bash"]
    assert bash == ["demo", "start-emulator", "configure-airflow", "create-job", "dags-test", "emulator-control"]
    unnamed = re.findall(r"^\.\. code-block:: bash\n(?!   :name:)", PAGE.read_text(), re.M)
    assert unnamed == [], "every bash block on the page needs a :name: so that this test runs it"


def test_make_demo_runs_the_demo_script_test_demo_runs() -> None:
    assert code_blocks(PAGE.read_text())["demo"][1] == "make demo\n"
    # --no-print-directory: under `make test` (a parent make) make would add "Entering/Leaving directory" lines
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/demo.py" in dry.splitlines()[-1]


@pytest.mark.e2e
@pytest.mark.reschedule_in_dag_test  # the gate's sensor is rescheduled inside `airflow dags test`
def test_every_command_on_the_page_runs(tmp_path: Path) -> None:
    blocks = code_blocks(PAGE.read_text())
    port = free_port()

    def on_port(code: str) -> str:
        return code.replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{port}").replace(f"--port {PORT}", f"--port {port}")

    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "SES_EXPORT_"))}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["TMPDIR"] = str(tmp_path)  # the page's `mktemp -d` AIRFLOW_HOME lands here

    server = subprocess.Popen(
        ["bash", "-c", "exec " + on_port(blocks["start-emulator"][1]).strip()],
        cwd=REPO,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        printed: list[str] = []
        deadline = time.monotonic() + 30
        assert server.stdout is not None
        while not any(line.startswith("export AWS_DEFAULT_REGION") for line in printed):
            assert time.monotonic() < deadline and server.poll() is None, printed
            printed.append(server.stdout.readline().rstrip("\n"))
        shown = on_port(blocks["emulator-output"][1]).splitlines()
        assert printed[: len(shown)] == shown  # the page shows what the emulator prints

        script = "set -euo pipefail\n" + "".join(
            on_port(blocks[name][1]) for name in ("configure-airflow", "create-job", "dags-test", "emulator-control")
        )
        result = subprocess.run(
            ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-6000:]
        assert "state=success" in out or "DagRunState.SUCCESS" in out, out[-6000:]
        assert re.search(r"Export file https?://\S+\?<redacted>: [1-9]\d* records", out), out[-6000:]
        assert "X-Amz-Signature" not in out
        # `control jobs`: the one job, the one step 3 created (its id echoed), COMPLETED; `control stats`: polled
        job = re.search(
            r'"JobId": "([^"]+)",\s*"index": 0,\s*"ExportSourceType": "METRICS_DATA",\s*"JobStatus": "(\w+)"', out
        )
        assert job is not None and job.group(2) == "COMPLETED", out[-3000:]
        assert re.search(rf"^{re.escape(job.group(1))}$", result.stdout, re.M), "step 3 echoes the job id it created"
        assert '"index": 1' not in out  # the DAG run created no second job
        assert re.search(r'"GetExportJob": \{\s*"requests": [1-9]', out), out[-3000:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
