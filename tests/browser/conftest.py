"""Fixtures of the browser journeys: the test app served on loopback, driven by headless Chromium.

The browser is Debian's Chromium (``/usr/bin/chromium``) driven by
Playwright's sync API, never a browser downloaded by ``playwright install``.
Screenshots of the key steps go to ``var/screenshots/`` (git-ignored) so that
a person can look at the screens after a run.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright
from werkzeug.serving import make_server

from app.demo.users import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO / "var" / "screenshots"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Milliseconds Playwright waits for an element, a navigation or a download.
# A page of the test app renders in well under a second on loopback.
DEFAULT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def live_server(app: Any) -> Iterator[str]:
    """Serve the test app on a free loopback port and yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="estafette-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with "
            "`bash scripts/ensure-system-packages.sh --browser` "
            "(never `playwright install`, which downloads another browser).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """Open a page in a fresh browser context: no cookie or session is shared between tests."""
    context = browser.new_context(
        locale="fr-FR",
        timezone_id="Europe/Paris",
        accept_downloads=True,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()
    yield new_page
    context.close()


@pytest.fixture()
def page_errors(page: Page) -> list[str]:
    """Collect script errors thrown in the page and responses with a 5xx status.

    A journey asserts this list is empty at its end, so a broken script or a
    server error on any request (an asset, a fetch) fails the test.
    """
    errors: list[str] = []

    def on_response(response: Response) -> None:
        if response.status >= 500:
            errors.append(f"HTTP {response.status} on {response.request.method} {response.url}")

    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.on("response", on_response)
    return errors


@pytest.fixture()
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Return a function that saves a full-page screenshot named after the test and the step."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    counter = iter(range(1, 100))

    def save(step: str) -> Path:
        path = SCREENSHOT_DIR / f"{test_name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def login(page: Page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the Flask-AppBuilder login form and wait for the home page."""
    page.goto(f"{base_url}/login/")
    page.fill("form[name=login] input[name=username]", username)
    page.fill("form[name=login] input[name=password]", password)
    page.click("form[name=login] [type=submit]")
    page.wait_for_url(f"{base_url}/")
    expect(page.locator("nav.estafette-baskets"), f"home page of {username} shows no basket bar").to_be_visible()


def logout(page: Page, base_url: str) -> None:
    """Follow the navbar's logout link and wait for the login form."""
    href = page.locator('a[href$="/logout/"]').first.get_attribute("href")
    assert href, "no logout link in the navbar"
    page.goto(f"{base_url}{href}" if href.startswith("/") else href)
    expect(page.locator("form[name=login]"), "logout did not lead to the login form").to_be_visible()
