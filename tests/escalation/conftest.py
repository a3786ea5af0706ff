# The browser fixtures (Chromium, the live site, signed-in pages) for test_browser.py.
from tests.browser.conftest import chromium, new_page, site  # noqa: F401
