"""The admin of task results, driven in a real headless Chromium against a live server.

Result rows come from tasks really enqueued and run (``drain()`` runs them
in this process through the worker's own code path). The admin is served by
pytest-django's ``live_server`` (a thread of this process), and Playwright
drives Chromium through it: log in with the login form, filter, search, open
detail pages, and check who is kept out.

Databases: ``tests.settings`` keeps ``default`` in memory. That works here
because pytest-django hands the live server thread the very same in-memory
SQLite connection (``connections_override``), so rows written by the test are
visible to the server; ``transaction=True`` makes them committed rows, which
are flushed after each test. No file database is needed.

Playwright's sync API runs an asyncio loop in this thread while it is active,
and Django refuses ORM calls from a thread with a running loop. So every ORM
call (rows, users, sessions) happens in fixtures set up *before* the browser
starts, and the browser is closed before the database is flushed: the
``page`` fixture depends on the data fixtures, which fixes that order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import django.contrib.admin
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from djtasks.models import TaskRecord
from djtasks.testing import drain
from tests.conftest import missing
from tests.taskapp import tasks

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is in the dev extra
    missing("playwright is not installed (pip install -e '.[dev]')", module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

CHROMIUM = Path(os.environ.get("DJTASKS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Milliseconds Playwright waits for a page, an element or an ``expect`` condition.
BROWSER_TIMEOUT_MS = 15_000
PASSWORD = "e2e-password"  # noqa: S105 - a throwaway test account
CHANGELIST = "/admin/djtasks/taskrecord/"
RED = "rgb(220, 53, 69)"  # STATUS_COLOURS["FAILED"] in djtasks/admin.py


@dataclass(frozen=True)
class Rows:
    """Ids of the result rows the tests look at, one per task run."""

    add: str  # add(2, 3): SUCCESSFUL, returns 5
    fail: str  # fail("boom"): FAILED with ValueError
    flaky: str  # flaky(2): failed twice (retried), then SUCCESSFUL
    mail: str  # mail_task(...) on queue "mail": SUCCESSFUL


@pytest.fixture(autouse=True)
def admin_settings(settings) -> None:  # noqa: ANN001 - pytest-django's settings fixture
    """Serve the admin's own CSS and JavaScript, so pages render as for a user; hash passwords fast.

    ``tests.settings`` has no ``staticfiles`` app and no ``STATIC_ROOT``; the
    live server then serves ``STATIC_URL`` from ``STATIC_ROOT``, which this
    points at the admin's static directory.
    """
    settings.STATIC_ROOT = str(Path(django.contrib.admin.__file__).parent / "static")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def chromium() -> Path:
    """Chromium's executable; missing, it fails the test in CI (``CI=true``) and skips it elsewhere."""
    if not CHROMIUM.is_file():
        missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set DJTASKS_CHROMIUM)")
    return CHROMIUM


@pytest.fixture
def rows() -> Rows:
    """Enqueue four tasks for real and run them to their end, retries included."""
    results = Rows(
        add=tasks.add.enqueue(2, 3).id,
        fail=tasks.fail.enqueue("boom").id,
        flaky=tasks.flaky.enqueue(2).id,
        mail=tasks.mail_task.enqueue("ops@example.com").id,
    )
    drain(include_scheduled=True)  # flaky's retries are 10 s and 20 s ahead: run them now
    statuses = dict(TaskRecord.objects.values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        results.add: "SUCCESSFUL", results.fail: "FAILED", results.flaky: "SUCCESSFUL", results.mail: "SUCCESSFUL"}
    return results


@pytest.fixture
def waiting(rows: Rows) -> None:
    """After the rows above ran: two tasks due now and one a day ahead, left in the queue."""
    tasks.add.enqueue(1, 1)
    tasks.add.enqueue(2, 2)
    tasks.add.apply_async((3, 3), countdown=86400)


@pytest.fixture
def plain_session() -> str:
    """The session cookie value of a logged-in user who is not staff.

    The admin login form refuses such users, so the session is made with the
    test client, then handed to the browser.
    """
    user = get_user_model().objects.create_user("plain", password=PASSWORD)
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def users(plain_session: str) -> dict[str, str]:
    """A superuser, a staff user without any permission, and a non-staff user's session."""
    model = get_user_model()
    model.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    model.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    return {"plain_session": plain_session}


@pytest.fixture
def page(chromium: Path, rows: Rows, users: dict[str, str], live_server) -> Iterator[Page]:  # noqa: ANN001
    """A fresh browser page whose relative URLs go to the live server; closed before the database is flushed."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=live_server.url)
            context.set_default_timeout(BROWSER_TIMEOUT_MS)
            expect.set_options(timeout=BROWSER_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def log_in(page: Page, username: str) -> None:
    """Log in through the admin's own login form."""
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text(username)


def result_rows(page: Page):  # noqa: ANN201 - a Locator
    return page.locator("#result_list tbody tr")


def filter_link(page: Page, title: str, choice: str):  # noqa: ANN201 - a Locator
    """The link of ``choice`` in the list filter titled ``title`` (a field's verbose name)."""
    return page.locator(f'#changelist-filter details[data-filter-title="{title}"]').get_by_role(
        "link", name=choice, exact=True)


def test_changelist_lists_filters_and_searches_the_results(page: Page, rows: Rows) -> None:
    log_in(page, "boss")
    page.get_by_role("link", name="Task results").first.click()
    expect(page).to_have_url(re.compile(re.escape(CHANGELIST) + "$"))
    expect(result_rows(page)).to_have_count(4)
    for name in ("add", "fail", "flaky", "mail_task"):
        expect(page.locator("#result_list")).to_contain_text(f"tests.taskapp.tasks.{name}")
    # Read-only: no "add" button and no bulk actions (so no delete).
    expect(page.locator(".object-tools a.addlink")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)

    filter_link(page, "status", "Failed").click()
    expect(page).to_have_url(re.compile(r"status__exact=FAILED"))
    expect(result_rows(page)).to_have_count(1)
    failed = result_rows(page).first
    expect(failed.locator("th")).to_have_text("tests.taskapp.tasks.fail")
    expect(failed.locator("td.field-coloured_status")).to_have_text("Failed")
    expect(failed.locator("td.field-coloured_status strong")).to_have_css("color", RED)
    expect(failed.locator("td.field-short_id")).to_have_text(rows.fail[:8])

    page.goto(CHANGELIST)
    filter_link(page, "queue", "mail").click()
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page).first.locator("th")).to_have_text("tests.taskapp.tasks.mail_task")

    page.goto(CHANGELIST)
    page.locator("#searchbar").fill("tasks.add")
    page.locator("#searchbar").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=tasks\.add"))
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page).first.locator("th")).to_have_text("tests.taskapp.tasks.add")
    expect(result_rows(page).first.locator("td.field-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))

    page.locator("#searchbar").fill(rows.flaky)  # a whole id finds its row
    page.locator("#searchbar").press("Enter")
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page).first.locator("th")).to_have_text("tests.taskapp.tasks.flaky")


def test_the_changelist_shows_how_many_tasks_wait_in_each_queue(waiting: None, page: Page) -> None:
    log_in(page, "boss")
    page.goto(CHANGELIST)
    queues = page.locator("#queue-depths")
    expect(queues.locator("caption")).to_have_text("Queues")
    expect(queues.locator("thead th")).to_have_text(["backend", "queue", "ready", "scheduled", "reserved"])
    # The ORM broker of "default" counts its queued rows; the other backend here (memory) holds nothing.
    expect(queues.locator("tr.queue-depth td")).to_have_text(["default", "default", "2", "1", "0"])
    expect(queues.locator("tr.queue-depth-none")).to_contain_text("no task waiting or running")
    expect(queues.locator("th[title]").nth(1)).to_have_attribute("title", re.compile("countdown"))
    expect(result_rows(page)).to_have_count(7)  # below it, the results: the four that ran, and the three waiting


def test_detail_pages_show_the_error_with_traceback_and_the_return_value(page: Page, rows: Rows) -> None:
    log_in(page, "boss")
    page.goto(f"{CHANGELIST}?status__exact=FAILED")
    page.locator("#result_list").get_by_role("link", name="tests.taskapp.tasks.fail", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(f"{CHANGELIST}{rows.fail}/change/")))
    expect(page.locator(".field-coloured_status")).to_contain_text("Failed")
    expect(page.locator(".field-arguments pre")).to_contain_text('"boom"')
    error = page.locator(".field-last_error")
    expect(error).to_contain_text("ValueError: boom")
    expect(error.locator("pre")).to_contain_text("Traceback (most recent call last)")
    expect(error.locator("pre")).to_contain_text("raise ValueError(message)")
    expect(page.locator(".field-result")).to_contain_text("-")
    # Viewing only: no save button on the detail page.
    expect(page.locator("input[name=_save]")).to_have_count(0)

    page.goto(f"{CHANGELIST}{rows.add}/change/")
    expect(page.locator(".field-coloured_status")).to_contain_text("Successful")
    expect(page.locator(".field-arguments pre")).to_contain_text(re.compile(r'"args": \[\s*2,\s*3\s*\]'))
    expect(page.locator(".field-result pre")).to_have_text("5")
    expect(page.locator(".field-last_error")).to_contain_text("-")
    expect(page.locator(".field-worker_list")).to_contain_text("djtasks.testing")

    # A task that succeeded at its third attempt: its last error, and the earlier one folded.
    page.goto(f"{CHANGELIST}{rows.flaky}/change/")
    expect(page.locator(".field-result pre")).to_have_text("3")
    expect(page.locator(".field-attempts")).to_contain_text("3")
    expect(page.locator(".field-delivery_count .readonly")).to_have_text("3")  # the ORM broker counts them
    expect(page.locator(".field-last_error")).to_contain_text("Flaky: attempt 2")
    earlier = page.locator(".field-error_history details")
    expect(earlier).to_have_count(1)
    expect(earlier.locator("summary")).to_contain_text("attempt 1 at")
    expect(earlier.locator("summary")).to_contain_text("Flaky: attempt 1")
    expect(earlier.locator("pre")).to_be_hidden()
    earlier.locator("summary").click()
    expect(earlier.locator("pre")).to_be_visible()
    expect(earlier.locator("pre")).to_contain_text("Traceback (most recent call last)")


def test_only_staff_with_permission_see_the_results(page: Page, rows: Rows, users: dict[str, str],
                                                    live_server) -> None:  # noqa: ANN001
    detail = f"{CHANGELIST}{rows.fail}/change/"
    to_login = re.compile(r"/admin/login/\?next=" + re.escape(CHANGELIST))

    # Anonymous: sent to the login page, from the list and from a detail page.
    page.goto(CHANGELIST)
    expect(page).to_have_url(to_login)
    page.goto(detail)
    expect(page).to_have_url(to_login)
    expect(page.locator("body")).not_to_contain_text("boom")

    # Logged in but not staff: sent to the login page too, which says who they are.
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": users["plain_session"],
                               "url": live_server.url}])
    page.goto(detail)
    expect(page).to_have_url(to_login)
    expect(page.locator("#content")).to_contain_text("You are authenticated as plain")
    expect(page.locator("body")).not_to_contain_text("boom")

    # Staff without the "view task result" permission: refused.
    page.context.clear_cookies()
    log_in(page, "clerk")
    expect(page.get_by_role("link", name="Task results")).to_have_count(0)
    response = page.goto(CHANGELIST)
    assert response is not None and response.status == 403
    response = page.goto(detail)
    assert response is not None and response.status == 403
    expect(page.locator("body")).not_to_contain_text("boom")
