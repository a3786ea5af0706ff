"""Helpers shared by the browser tests: a job's HTTP ping, an in-process sweep, checks that a
page was not reloaded, fits a phone's width and labels its controls."""

import urllib.request
from urllib.error import HTTPError

import pytest

from apps.checks.models import Check
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.incidents.models import Incident

PASSWORD = "correct horse battery"


def http(url: str, body: bytes | None = None) -> tuple[int, str]:
    """A job's ping: a real HTTP request from outside the browser."""
    try:
        with urllib.request.urlopen(url, data=body, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def sweep(now=None):
    """Run the sweeper in this process, at `now` (default: the database clock)."""
    return sweep_due_checks(now=now or database_now())


def mark_page(page):
    """Set a marker that only survives as long as the document does: no reload, no navigation."""
    page.evaluate("window.tocsinMarker = 'same document'")


def assert_same_document(page):
    assert page.evaluate("window.tocsinMarker") == "same document"


WIDEST_ELEMENTS = """
[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1 || e.scrollWidth > innerWidth)
  .slice(0, 5)
  .map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)
"""


def assert_fits_horizontally(page, what: str):
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    if widths["scroll"] > widths["inner"]:
        culprits = page.evaluate(WIDEST_ELEMENTS)
        pytest.fail(f"{what} overflows: {widths}, widest: {culprits}")


UNLABELLED_CONTROLS = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')]
  .filter(e => e.offsetParent !== null || e.closest('details'))
  .filter(e => {
    const named = (e.labels && e.labels.length) || e.getAttribute('aria-label')
      || e.getAttribute('aria-labelledby') || (e.textContent || '').trim();
    return !named;
  })
  .map(e => e.outerHTML.slice(0, 120))
"""


def assert_accessible_basics(page, what: str):
    """Every visible control has a name, and every status pill says its status in words."""
    unlabelled = page.evaluate(UNLABELLED_CONTROLS)
    assert unlabelled == [], f"{what}: controls without a label: {unlabelled}"
    pills = page.locator(".pill").all_inner_texts()
    assert all(text.strip() for text in pills), f"{what}: a status pill without text"


def make_down(site, check) -> Incident:
    """Drive `check` over HTTP to up, then down by a failed run with a log; the open incident."""
    assert http(f"{site}/ping/{check.ping_token}") == (200, "OK")
    sweep()
    body = b"starting backup\nerror: disk full\n"
    assert http(f"{site}/ping/{check.ping_token}/fail", body) == (200, "OK")
    sweep()
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    return Incident.objects.get(owner=check)


def is_page_poll(response) -> bool:
    """An htmx request of the page's own regions (not the sweeper banner's poll, which every
    signed-in page makes on its own schedule)."""
    return (
        response.request.headers.get("hx-request") == "true"
        and "/sweeper-banner/" not in response.url
    )
