"""The Airflow UI as a person sees it: headless Chromium (Debian's ``chromium``, driven by Playwright), logged in as
admin, on the 2.x webserver's pages or the 3.x React UI's routes. Used by ``test_ui_browser.py``; what it saves under
``.deployment/<image>/screenshots/`` (screenshots, each page's DOM and the responses the page fetched) is scanned again
by ``test_zz_leak_scan.py``."""

from __future__ import annotations

import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deployment.conftest import State

CHROMIUM = Path("/usr/bin/chromium")
#: What Chromium needs here (as root, no display); without the background-networking ones connections are refused.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
GATE = "example_ses_export_gate"
TO_S3 = "example_ses_export_to_s3"
#: The result operator (pushes the full URL to XCom ``s3_url``; its log shows it redacted) and the copy task.
RESULT_TASK = (GATE, "export_result")
COPY_TASK = (TO_S3, "copy_export")


def screenshots_dir(state: State) -> Path:
    """``.deployment/<image>/screenshots`` (git-ignored with the rest of the state folder)."""
    return Path(state.data["task_log_folder"]).parent.parent / "screenshots"


@dataclass
class SavedPage:
    """One page as the browser showed it.

    :param name: the artifact's base name.
    :param url: the address opened.
    :param text: the page's visible text.
    :param html: its DOM after rendering.
    :param fetched: the bodies of the text/JSON responses the page fetched from the UI while loading.
    :param files: what was written for it (screenshot, DOM, responses).
    """

    name: str
    url: str
    text: str
    html: str
    fetched: list[str]
    files: list[Path] = field(default_factory=list)

    def everything(self) -> str:
        return "\n".join([self.text, self.html, *self.fetched])


def task_page_urls(state: State, run: dict[str, Any], dag_id: str, task_id: str) -> dict[str, str]:
    """The task instance's details, rendered-templates and log pages (paths below the UI's address).

    :param state: the deployment.
    :param run: the DAG run as the REST API returns it.
    :param dag_id: the DAG.
    :param task_id: the task.
    """
    if state.airflow_3:
        base = f"/dags/{dag_id}/runs/{urllib.parse.quote(run['dag_run_id'], safe='')}/tasks/{task_id}"
        return {"details": f"{base}/details", "rendered": f"{base}/rendered_templates", "log": base}
    query = urllib.parse.urlencode({"dag_id": dag_id, "task_id": task_id, "execution_date": run["execution_date"]})
    grid = urllib.parse.urlencode({"dag_run_id": run["dag_run_id"], "task_id": task_id, "tab": "details"})
    return {
        "details": f"/dags/{dag_id}/grid?{grid}",
        "rendered": f"/rendered-templates?{query}",
        "log": f"/log?{query}",
    }


class Browser:
    """A logged-in headless Chromium on the deployment's UI.

    :param state: the deployment.
    :param page: the Playwright page.
    :param out: where screenshots and page dumps go.
    """

    def __init__(self, state: State, page: Any, out: Path) -> None:
        self.state = state
        self.page = page
        self.out = out
        self.base = state.data["ui_url"]
        self._fetched: list[str] = []
        page.on("response", self._keep)

    def _keep(self, response: Any) -> None:
        kind = response.headers.get("content-type", "")
        if response.url.startswith(self.base) and ("json" in kind or "text" in kind):
            try:
                self._fetched.append(f"{response.url}\n{response.text()}")
            except Exception:  # a redirect or an aborted request has no body: nothing to keep
                pass

    def login(self) -> None:
        """The FAB login form (``/login/`` on 2.x, the FAB auth manager's ``/auth/login/`` on 3.x)."""
        self.page.goto(self.base + ("/auth/login/" if self.state.airflow_3 else "/login/"))
        self.page.fill("input[name=username]", "admin")
        self.page.fill("input[name=password]", "admin")
        with self.page.expect_navigation():
            self.page.press("input[name=password]", "Enter")
        assert "login" not in self.page.url.lower(), f"login failed: still on {self.page.url}"

    def open(self, name: str, path: str, shows: str) -> SavedPage:
        """Open ``path``, wait until the page's text contains ``shows``, save a full-page screenshot and its DOM.

        :param name: the artifact's base name.
        :param path: below the UI's address.
        :param shows: text the page shows once it has loaded what matters.
        """
        self._fetched = []
        self.page.goto(self.base + path)
        self.page.wait_for_function("s => document.body && document.body.innerText.includes(s)", arg=shows,
                                    timeout=60_000)  # fmt: skip
        self.page.wait_for_load_state("networkidle")
        saved = SavedPage(name, path, self.page.inner_text("body"), self.page.content(), list(self._fetched))
        shot = self.out / f"{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        (self.out / f"{name}.html").write_text(saved.html)
        (self.out / f"{name}.fetched.txt").write_text("\n\n".join(saved.fetched))
        saved.files = [shot, self.out / f"{name}.html", self.out / f"{name}.fetched.txt"]
        return saved


@contextmanager
def browser(state: State) -> Iterator[Browser]:
    """Headless Chromium with a new empty profile, logged in as admin; Debian's ``chromium`` installed if missing.

    :param state: the deployment.
    """
    from playwright.sync_api import sync_playwright

    from deployment.services import ensure_debian_package

    ensure_debian_package("chromium", CHROMIUM)
    out = screenshots_dir(state)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sesexport-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            context.set_default_timeout(60_000)
            b = Browser(state, context.new_page(), out)
            b.login()
            yield b
        finally:
            context.close()
