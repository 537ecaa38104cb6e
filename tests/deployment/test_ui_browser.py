"""The UI in a real browser, after the example scenarios (``test_examples.py``) ran: headless Chromium logged in as
admin shows the copy task's S3 console link with the right target, and the result operator's rendered-templates and
log pages show no full pre-signed URL. Screenshots land in ``.deployment/<image>/screenshots/`` (printed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.deployment.conftest import AirflowApi, State
from tests.deployment.ui import COPY_TASK, RESULT_TASK, SavedPage, browser, task_page_urls
from tests.leakcheck import find_leaks

LINK_NAME = "S3 object"


def latest_success(api: AirflowApi, dag_id: str, task_id: str) -> dict[str, Any]:
    """The newest run of ``dag_id`` in which ``task_id`` succeeded (the scenarios of ``test_examples.py``).

    :param api: the REST API.
    :param dag_id: the DAG.
    :param task_id: the task that must have succeeded.
    """
    runs = sorted(api.runs(dag_id), key=lambda r: r["start_date"] or "", reverse=True)
    for run in runs:
        if api.task_states(dag_id, run["dag_run_id"]).get(task_id) == "success":
            return run
    raise AssertionError(f"no run of {dag_id} with {task_id} succeeded: the example scenarios did not run")


def expected_console_link(bucket: str, key: str) -> str:
    """The S3 console address of an object, written out independently of the link class."""
    import urllib.parse

    return (
        f"https://console.aws.amazon.com/s3/object/{bucket}?region=us-east-1&prefix={urllib.parse.quote(key, safe='/')}"
    )


def _link_target(page: Any, name: str) -> str:
    """Where the extra link called ``name`` goes: an anchor's ``href`` (3.x, and 2.x once it fetched the URL)."""
    link = page.get_by_role("link", name=name)
    link.first.wait_for(state="visible")
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    href = link.first.get_attribute("href") or ""
    while not href.startswith("http") and dt.datetime.now() < deadline:  # 2.x fills the href in from /extra_links
        page.wait_for_timeout(250)
        href = link.first.get_attribute("href") or ""
    return href


def test_ui_shows_the_s3_link_and_no_signed_url(api: AirflowApi, state: State) -> None:
    copy_run = latest_success(api, *COPY_TASK)
    result_run = latest_success(api, *RESULT_TASK)
    job_id = str(api.xcom(RESULT_TASK[0], result_run["dag_run_id"], RESULT_TASK[1], "job_id"))
    s3_uri = str(api.xcom(COPY_TASK[0], copy_run["dag_run_id"], COPY_TASK[1]))
    bucket, key = s3_uri.removeprefix("s3://").split("/", 1)
    expected = expected_console_link(bucket, key)
    links = api.get(f"/dags/{COPY_TASK[0]}/dagRuns/{copy_run['dag_run_id']}/taskInstances/{COPY_TASK[1]}/links")
    assert links.get("extra_links", links).get(LINK_NAME) == expected, links

    saved: list[SavedPage] = []
    with browser(state) as b:
        copy_pages = task_page_urls(state, copy_run, *COPY_TASK)
        copy_page = b.open("copy_export-details", copy_pages["details"], LINK_NAME)
        saved.append(copy_page)
        assert _link_target(b.page, LINK_NAME) == expected

        result_pages = task_page_urls(state, result_run, *RESULT_TASK)
        rendered = b.open("export_result-rendered-templates", result_pages["rendered"], job_id)
        log = b.open("export_result-log", result_pages["log"], job_id)
        saved += [rendered, log]

    print(f"\nbrowser check ({state.image}): screenshots and page dumps")
    for page in saved:
        for path in page.files:
            print(f"  {path}")
    # the log shows the URL the operator read, redacted: the page did show the context a leak would sit in
    assert "?<redacted>" in log.text, log.text[-3000:]
    for page in (rendered, log):
        findings = find_leaks(page.everything(), f"UI page {page.name}")
        assert not findings, "\n".join(map(str, findings))
