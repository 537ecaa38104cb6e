"""
The collector can fail: a throwaway pytest session (a subprocess on a temporary tree) with an "e2e" test
that leaks a signed URL in each way a task can (print, stderr, logging, output read through ``capfd``,
a failing assertion) must end with the leak check failing and naming every channel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

URL = "https://b.s3.amazonaws.com/x.csv?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=abc123"

LEAKY_TESTS = textwrap.dedent(
    f"""
    import logging
    import sys

    URL = {URL!r}

    def test_prints() -> None:
        print("task log line", URL)

    def test_stderr() -> None:
        sys.stderr.write("warning " + URL + "\\n")

    def test_logs() -> None:
        logging.getLogger("airflow.task").warning("poll: %s", URL)

    def test_capfd(capfd) -> None:
        print("read by the test", URL)
        assert URL in capfd.readouterr().out

    def test_clean() -> None:
        print("https://b.s3.amazonaws.com/x.csv?<redacted>")
    """
)

CHECK = textwrap.dedent(
    """
    from tests import leakcheck

    def test_no_leaks() -> None:
        sources = sorted({f.source for f in leakcheck.COLLECTOR.findings})
        print("SOURCES", sources)
        assert not leakcheck.COLLECTOR.findings
    """
)


def test_a_leaking_session_fails_the_check(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "e2e").mkdir(parents=True)
    (tests / "zz_leakcheck").mkdir()
    for package in (tests, tests / "e2e", tests / "zz_leakcheck"):
        (package / "__init__.py").write_text("")
    shutil.copy(REPO / "tests" / "leakcheck.py", tests / "leakcheck.py")
    shutil.copy(REPO / "tests" / "zz_leakcheck" / "conftest.py", tests / "zz_leakcheck" / "conftest.py")
    (tests / "zz_leakcheck" / "test_check.py").write_text(CHECK)
    # collected first, on purpose: the conftest must still move the check to the end
    (tests / "aa_first").mkdir()
    (tests / "aa_first" / "__init__.py").write_text("")
    (tests / "e2e" / "test_leaky.py").write_text(LEAKY_TESTS)

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "5 passed, 1 failed" in out or "1 failed, 5 passed" in out, out
    assert out.index("test_leaky.py") < out.rindex("test_check.py::test_no_leaks"), "the check did not run last"
    sources = next(line for line in out.splitlines() if line.startswith("SOURCES"))
    for channel in (
        "test_prints [Captured stdout call]",
        "test_stderr [Captured stderr call]",
        "log record",
        "capture fixture",
    ):
        assert channel in sources, f"{channel!r} leak not found: {sources}"
    assert "test_clean" not in sources
