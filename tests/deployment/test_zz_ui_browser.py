"""The deployment's browser check (issue 11, "browser"), after ``test_examples.py``: headless Chromium (Debian's
``chromium`` package, driven by Playwright; installed here when it is missing) logged in as admin opens the UI's
own pages. The copy task's page shows the S3 extra link pointing at the copied object in the AWS console; the result
operator's rendered-templates page and log page show what they should (its job id, its log line with the redacted
URL) and no secret value of a pre-signed URL the deployment's emulator issued (:mod:`tests.leakcheck`) in their HTML
or text.

Airflow 3 (api-server, React UI): ``/dags/<dag>/runs/<run>/tasks/<task>`` (its Logs tab), ``.../details`` and
``.../rendered_templates``. Airflow 2.10 (Flask webserver): the grid's task instance panel (extra links),
``/rendered-templates`` and ``/log``. Screenshots are kept in ``.deployment/<image>/screenshots/`` (git-ignored) and
listed at the end of the test output.
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pytest

from tests.deployment.conftest import SCREENSHOTS, AirflowApi, Aws, State
from tests.deployment.test_zz_leak_scan import RESULT_TASK, collector_for, latest_success
from tests.leakcheck import Collector

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
#: What Chromium needs on this machine (Playwright adds ``--headless`` and the fresh ``--user-data-dir`` itself).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Longest wait for a page or an element, in milliseconds.
TIMEOUT_MS = 60_000
#: The copy task of the to-S3 example, whose extra link is checked.
COPY_TASK = ("example_ses_export_to_s3", "copy_export")
#: The extra link's name (``airflow_provider_sesexport.links.S3ObjectLink.name``).
LINK_NAME = "S3 object"
#: The region of the deployment's AWS connection (``deployment.airflow_settings.REGION``).
REGION = "us-east-1"


@dataclass
class Browser:
    """A logged-in page of the deployment's UI, and the screenshots taken with it."""

    page: Page
    state: State
    folder: Path
    shots: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        """Go to a UI path (``/dags/...``) and wait for the page to settle.

        :param path: the path and query under the UI's base URL.
        """
        self.page.goto(self.state.data["ui_url"] + path, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        self.page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``<folder>/<n>-<name>.png``; returns its path.

        :param name: what the page is.
        """
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def scan(self, source: str, collector: Collector) -> None:
        """Scan the page's HTML, its visible text and its text content for a pre-signed URL (the text content joins
        what a syntax highlighter splits into one element per token, as the React UI's rendered templates are shown:
        neither the HTML nor the visible text, one line per token, would show such a URL whole).

        :param source: names the page in the findings.
        :param collector: where findings go.
        """
        collector.scan(f"{source} (HTML)", self.page.content())
        collector.scan(f"{source} (text)", self.page.inner_text("body"))
        collector.scan(f"{source} (text content)", self.text_content())

    def text_content(self) -> str:
        """The page's ``document.body.textContent``."""
        return str(self.page.evaluate("document.body.textContent"))


def _log_in(browser: Browser) -> None:
    """The FAB login form: ``/auth/login/`` on Airflow 3 (FAB auth manager), ``/login/`` on Airflow 2."""
    page = browser.page
    browser.open("/auth/login/" if browser.state.airflow_3 else "/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser(state: State, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """One Chromium for the module, with a fresh profile, logged in as admin."""
    from playwright.sync_api import sync_playwright

    from deployment.services import ensure_debian_package

    ensure_debian_package("chromium", CHROMIUM)
    folder = Path(os.environ["SESEXPORT_DEPLOYMENT_STATE"]) / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        b = Browser(page=context.new_page(), state=state, folder=folder)
        try:
            _log_in(b)
            b.shot("logged-in")
            yield b
        finally:
            request.config.stash.setdefault(SCREENSHOTS, []).extend(b.shots)
            context.close()


@dataclass
class TaskPages:
    """The UI paths of one task instance (the latest run in which it succeeded)."""

    dag_id: str
    task_id: str
    run: dict[str, Any]

    def react(self, tab: str = "") -> str:
        """Airflow 3: the task instance page, on ``tab`` (its Logs when empty).

        :param tab: ``details``, ``rendered_templates``, ...
        """
        path = f"/dags/{self.dag_id}/runs/{quote(self.run['dag_run_id'], safe='')}/tasks/{self.task_id}"
        return f"{path}/{tab}" if tab else path

    def flask(self, view: str) -> str:
        """Airflow 2: a task instance view of the webserver (``log``, ``rendered-templates``, ``grid``).

        :param view: the view.
        """
        if view == "grid":
            query = {"dag_run_id": self.run["dag_run_id"], "task_id": self.task_id}
            return f"/dags/{self.dag_id}/grid?{urlencode(query)}"
        query = {"dag_id": self.dag_id, "task_id": self.task_id, "execution_date": self.run["execution_date"]}
        return f"/{view}?{urlencode(query | {'map_index': -1})}"


def _pages(api: AirflowApi, dag_id: str, task_id: str) -> TaskPages:
    return TaskPages(dag_id, task_id, latest_success(api, dag_id, task_id))


def _listing(browser: Browser) -> str:
    return "screenshots:\n" + "\n".join(map(str, browser.shots))


def test_page_scan_finds_a_planted_signed_url(browser: Browser, api: AirflowApi, aws: Aws) -> None:
    """The page scan can fail: a real URL from the emulator's GetExportJob, as a link and as text in a page, is found
    in the page's HTML and in its text; its redacted form is not."""
    from airflow_provider_sesexport.utils.redaction import redact_url

    dag_id, task_id = RESULT_TASK
    job_id = api.xcom(dag_id, latest_success(api, dag_id, task_id)["dag_run_id"], task_id, "job_id")
    url = aws.ses.get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    page = browser.page
    page.set_content(f'<p>export file <a href="{url}">{url}</a></p><p>{redact_url(url)}</p>')
    collector = collector_for(browser.state)
    browser.scan("planted", collector)
    sources = sorted({f.source for f in collector.findings})
    assert sources == ["planted (HTML)", "planted (text content)", "planted (text)"], collector.findings
    # the URL as a syntax highlighter shows it: one element per token, each its own line of the visible text
    base, query = url.split("?", 1)
    tokens = [base, "?", *(t for pair in query.split("&") for t in (*pair.partition("="), "&"))]
    page.set_content("<pre>" + "".join(f'<span style="display: flex">{html.escape(t)}</span>' for t in tokens))
    highlighted = collector_for(browser.state)
    browser.scan("highlighted", highlighted)
    # each value whole in its own element: found in every view of the page
    assert {f.source for f in highlighted.findings} == {
        "highlighted (HTML)",
        "highlighted (text)",
        "highlighted (text content)",
    }, highlighted.findings
    page.set_content(f"<p>export file {redact_url(url)}</p>")
    clean = collector_for(browser.state)
    browser.scan("clean", clean)
    assert clean.texts_scanned == 3 and not clean.findings, clean.findings


def test_copy_task_page_links_to_the_copied_object(browser: Browser, api: AirflowApi) -> None:
    """The copy task's page shows the ``S3 object`` extra link, to the copied object in the AWS console."""
    dag_id, task_id = COPY_TASK
    pages = _pages(api, dag_id, task_id)
    uri = api.xcom(dag_id, pages.run["dag_run_id"], task_id)  # s3://bucket/key, checked by test_examples.py
    bucket, key = str(uri).removeprefix("s3://").split("/", 1)
    expected = f"https://console.aws.amazon.com/s3/object/{bucket}?region={REGION}&prefix={quote(key, safe='/')}"

    path = pages.react("details") if browser.state.airflow_3 else pages.flask("grid")
    browser.open(path)
    link = browser.page.get_by_role("link", name=LINK_NAME, exact=True)
    try:
        link.wait_for(state="visible", timeout=TIMEOUT_MS)
    finally:
        shot = browser.shot("copy-task-extra-link")
    print(f"\nbrowser check ({browser.state.image}): {path} links to {expected}; screenshot {shot}")
    assert link.get_attribute("href") == expected, _listing(browser)


def _check_result_page(browser: Browser, name: str, path: str, expected: list[str], wrap: bool = False) -> Collector:
    """Open one of the result operator's pages, wait until it shows every text of ``expected``, screenshot it and
    scan it; returns the scan.

    :param browser: the logged-in browser.
    :param name: the screenshot's name.
    :param path: the page.
    :param expected: texts the page must show (proof that the scan saw the content a leak would sit in).
    :param wrap: wrap the log's lines before the screenshot, so that it shows them whole (the React log viewer's
        ``w`` key, the Flask log page's "Toggle Wrap" link).
    """
    browser.open(path)
    page = browser.page
    try:
        for text in expected:
            page.get_by_text(text).first.wait_for(state="visible", timeout=TIMEOUT_MS)
        if wrap and browser.state.airflow_3:
            page.keyboard.press("w")
        elif wrap:
            page.get_by_text("Toggle Wrap", exact=True).click()
        page.wait_for_timeout(500)
    finally:
        shot = browser.shot(name)
    collector = collector_for(browser.state)
    browser.scan(path, collector)
    body = browser.text_content()
    print(f"\nbrowser check ({browser.state.image}): {path} shows {expected}; screenshot {shot}")
    assert all(text in body for text in expected), f"{path} does not show {expected}; {_listing(browser)}"
    return collector


def test_result_rendered_templates_show_no_full_url(browser: Browser, api: AirflowApi) -> None:
    """The result operator's rendered-templates page shows its ``job_id`` field, and no full pre-signed URL."""
    dag_id, task_id = RESULT_TASK
    pages = _pages(api, dag_id, task_id)
    job_id = str(api.xcom(dag_id, pages.run["dag_run_id"], task_id, "job_id"))
    path = pages.react("rendered_templates") if browser.state.airflow_3 else pages.flask("rendered-templates")
    collector = _check_result_page(browser, "result-rendered-templates", path, ["job_id", job_id])
    assert not collector.findings, f"pre-signed URL on {path}: {collector.findings}; {_listing(browser)}"


def test_result_log_shows_no_full_url(browser: Browser, api: AirflowApi) -> None:
    """The result operator's log page shows its summary line with the redacted URL, and no full pre-signed URL."""
    dag_id, task_id = RESULT_TASK
    pages = _pages(api, dag_id, task_id)
    job_id = str(api.xcom(dag_id, pages.run["dag_run_id"], task_id, "job_id"))
    path = pages.react() if browser.state.airflow_3 else pages.flask("log")
    expected = [f"SES export job {job_id}: statistics", "?<redacted>"]
    collector = _check_result_page(browser, "result-log", path, expected, wrap=True)
    assert not collector.findings, f"pre-signed URL on {path}: {collector.findings}; {_listing(browser)}"
