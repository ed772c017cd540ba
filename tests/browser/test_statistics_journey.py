"""A head of department reads the statistics dashboard in Chromium, follows a bar to its mail and prints the report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import login


def test_dashboard_chart_drill_down_and_report(
    app, live_server: str, page: Page, page_errors: list[str], screenshot: Callable[[str], Path], tmp_path: Path
):
    from app.mail.operations import today_in_paris
    from tests.integration.test_statistics import generate_rows, store_rows

    with app.app_context():
        store_rows(generate_rows(today_in_paris()))

    login(page, live_server, "chef.sejour")
    page.click("#nav-statistics")
    expect(page.locator("h1")).to_have_text(re.compile("Statistiques|Statistics"))
    expect(page.locator("#chart-trend")).to_be_visible()
    expect(page.locator("#chart-pyramid")).to_be_visible()
    # Only the head's own departments are offered and shown.
    options = page.locator("#department option").all_inner_texts()
    assert all(text.startswith("DMI-SSE") for text in options[1:]), options
    assert page.locator("#table-departments tbody tr[data-department^='CAB']").count() == 0
    shot = screenshot("dashboard")
    page.screenshot(path=str(tmp_path / "statistics-dashboard.png"), full_page=True)
    assert shot.stat().st_size > 10_000

    # The first non-empty bar of the age pyramid opens the list of exactly that many mails.
    bar = page.locator("#chart-pyramid a.chart-link:not([data-value='0'])").first
    value = bar.get_attribute("data-value")
    bar.click()
    expect(page.locator("#statistics-list-total")).to_have_text(value)
    screenshot("drill-down")

    page.go_back()
    with page.expect_download() as download_info:
        page.locator("p[data-table='summary'] a.export-csv").click()
    content = Path(download_info.value.path()).read_bytes()
    assert content.startswith("\ufeff".encode())

    page.click("#monthly-report")
    expect(page.locator("#statistics-report")).to_be_visible()
    assert page.locator("nav.estafette-baskets").count() == 0
    page.emulate_media(media="print")
    screenshot("monthly-report")
    assert page_errors == []
