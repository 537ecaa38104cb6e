"""
The collector can fail: a throwaway pytest session (a subprocess on a temporary tree) with an "e2e" test
that leaks planted secret values in each way a task can (print, stderr, logging, output read through
``capfd``), in each form (whole URL, scheme-less path and query as urllib3 writes it, URL-encoded once and
twice, the token alone), must end with the leak check failing and naming every channel; a test printing
the redacted URL, the parameters' bare names and an unplanted value of the same shape must not be named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

LEAKY_TESTS = textwrap.dedent(
    """
    import logging
    import secrets
    import sys
    from urllib.parse import parse_qs, quote, urlsplit

    from tests.leakcheck import plant_url

    def test_prints() -> None:
        print("task log line", plant_url())

    def test_stderr() -> None:
        url = urlsplit(plant_url("https://x.invalid/f.csv"))
        sys.stderr.write(f"Max retries exceeded with url: {url.path}?{url.query} (Caused by NameResolutionError)\\n")

    def test_logs() -> None:
        logging.getLogger("airflow.task").warning("poll: %s", quote(plant_url(), safe=""))

    def test_capfd(capfd) -> None:
        print("read by the test", quote(quote(plant_url(), safe=""), safe=""))
        assert "%25" in capfd.readouterr().out

    def test_token_alone() -> None:
        token = parse_qs(urlsplit(plant_url()).query)["X-Amz-Security-Token"][0]
        print("X-Amz-Security-Token:", token)

    def test_clean() -> None:
        plant_url()
        print("https://b.s3.amazonaws.com/x.csv?<redacted> X-Amz-Signature=<redacted>", secrets.token_hex(32))
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
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "6 passed, 1 failed" in out or "1 failed, 6 passed" in out, out
    assert out.index("test_leaky.py") < out.rindex("test_check.py::test_no_leaks"), "the check did not run last"
    sources = next(line for line in out.splitlines() if line.startswith("SOURCES"))
    for channel in (
        "test_prints [Captured stdout call]",
        "test_stderr [Captured stderr call]",
        "log record",
        "capture fixture",
        "test_token_alone [Captured stdout call]",
    ):
        assert channel in sources, f"{channel!r} leak not found: {sources}"
    assert "test_clean" not in sources
