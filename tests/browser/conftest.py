"""Fixtures for the browser tests: Debian's Chromium driven by Playwright's sync API against
pytest-django's live_server.

Playwright's sync API runs an asyncio event loop in the test thread, and Django refuses ORM
calls from a thread with a running loop unless told that this is safe. Here it is: the loop only
talks to the browser, and our ORM calls are ordinary blocking calls between browser steps.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Generous: the pages poll every 5 s, so a status change shows within about one interval.
UI_TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items):
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    )
    for item in items:
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(skip)


# One Playwright and one browser for the whole session, however many test folders import the
# fixture into their own conftest (each import is a fixture of its own to pytest, and a second
# sync_playwright() in the same thread refuses to start): the first user starts them, the last
# one to finish stops them.
_shared: dict = {"users": 0}


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    if _shared["users"] == 0:
        _shared["playwright"] = sync_playwright().start()
        _shared["browser"] = _shared["playwright"].chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
    _shared["users"] += 1
    try:
        yield _shared["browser"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared.pop("browser").close()
            _shared.pop("playwright").stop()


@pytest.fixture
def site(live_server, settings):
    """The live server's base URL, also used as SITE_URL so that the ping URLs the pages show
    point at it."""
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def new_page(chromium, site):
    """new_page(user=None, viewport=DESKTOP): a fresh browser context, signed in as `user`
    through a real session cookie when one is given."""
    contexts = []

    def make(user=None, viewport=DESKTOP):
        context = chromium.new_context(viewport=viewport, base_url=site)
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": site}]
            )
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    # Shown with -s, and in the captured output of a failing test: where to look.
    print(f"screenshot: {path}")
    return path
