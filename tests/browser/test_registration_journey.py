"""Registration journeys in a real browser: mail room to handling department.

Elements are selected by id, name or data attribute, never by visible text,
so the journeys pass whether the pages show French or the English source
text (the French catalog may not be compiled).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image
from playwright.sync_api import Dialog, Locator, Page, expect

from app.demo.letters import render_letter_pdf
from app.mail.operations import today_in_paris
from tests.browser.conftest import DEFAULT_TIMEOUT_MS, login, logout

RESIDENCE_PERMIT = "residence_permit_request"
RESIDENCE_PERMIT_DEPARTMENT = "DMI-SSE-BPT"
MAIL_DETAIL_PATH = re.compile(r"/mail/(\d+)$")
# Share of the PDF preview's pixels that must be white (the page) and dark (the
# viewer's background) once the letter is drawn. Measured with Chromium 156 in the
# 1280x900 viewport: the page covers about 25% of the frame and the background 70%.
MIN_SHADE_SHARE = 0.10


# --- Test data ------------------------------------------------------------


def days_ago(days: int) -> date:
    """Return the date ``days`` days before today in Paris, the day the server registers mail on."""
    return today_in_paris() - timedelta(days=days)


def ambiguous_past_date() -> date:
    """Return the latest past date whose day and month could be swapped, such as 03/02.

    Both readings of such a date are valid, so a form that re-read dd/mm/yyyy
    as mm/dd/yyyy would show a different date instead of failing.
    """
    candidate = days_ago(1)
    while candidate.day > 12 or candidate.day == candidate.month:
        candidate -= timedelta(days=1)
    return candidate


def letter_pdf(subject: str, sender: dict[str, str], letter_date: date) -> bytes:
    mail = {
        "category": "incoming",
        "subject": subject,
        "letter_date": letter_date,
        "body_paragraphs": [
            "Je sollicite la délivrance d’un premier titre de séjour pour mon époux, "
            "arrivé en France au début de l’année.",
            "Vous trouverez ci-joint les pièces justificatives demandées (état civil, "
            "justificatif de domicile, photographies d’identité).",
            "Je vous prie d’agréer, Monsieur le Préfet, l’expression de ma haute considération.",
        ],
    }
    return render_letter_pdf(mail, sender)


# --- Page steps -------------------------------------------------------------


def open_registration_form(page: Page, type_id: str) -> None:
    """Go from any page to the registration form of ``type_id`` through the menu links."""
    page.click("nav.estafette-baskets a.btn-register")
    page.wait_for_url(re.compile(r"/mail/register$"))
    page.click(f'a[data-type="{type_id}"]')
    page.wait_for_url(re.compile(rf"/mail/register/{type_id}$"))
    expect(page.locator("#registration-form")).to_be_visible()


def fill_new_sender(page: Page, civility: str, first_name: str, last_name: str, city: str = "") -> None:
    page.select_option("#correspondent_kind", "person")
    page.select_option("#correspondent_civility", civility)
    page.fill("#correspondent_first_name", first_name)
    page.fill("#correspondent_last_name", last_name)
    if city:
        page.fill("#correspondent_city", city)


def search_directory(page: Page, text: str) -> None:
    """Type in the directory search box the way an agent does, one key at a time."""
    search_box = page.locator("#correspondent_search")
    search_box.fill("")
    search_box.press_sequentially(text, delay=30)


def form_errors(page: Page) -> str:
    """Return the field errors and error alerts shown on the page, for assertion messages."""
    field_errors = page.locator("[data-error-for]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.errorFor + ': ' + n.textContent.trim())"
    )
    alerts = page.locator(".alert-danger").all_inner_texts()
    return "; ".join(field_errors + [text.strip() for text in alerts]) or "no error shown"


def submit_registration(page: Page) -> tuple[int, str]:
    """Submit the registration form and return the new mail's id and number from its detail page."""
    with page.expect_navigation():
        page.click("#register-submit")
    match = MAIL_DETAIL_PATH.search(page.url)
    assert match, f"registration was rejected, still on {page.url}: {form_errors(page)}"
    chrono = page.locator("#mail-chrono").inner_text().strip()
    return int(match.group(1)), chrono


def submit_expecting_errors(page: Page) -> None:
    with page.expect_navigation():
        page.click("#register-submit")
    assert not MAIL_DETAIL_PATH.search(page.url), "the form was accepted although a required field is empty"


def open_basket(page: Page, basket_id: str) -> None:
    page.click(f'nav.estafette-baskets a[data-basket="{basket_id}"]')
    page.wait_for_url(re.compile(rf"/mail/basket/{basket_id}(\?.*)?$"))


def wait_for_rendered_pdf(page: Page, frame_selector: str) -> None:
    """Wait until the frame shows a white document page on the dark background of Chromium's PDF viewer.

    Both shades are needed: an empty frame is transparent and shows the white
    page behind it, and the viewer paints its dark background before the
    document. A response that Chromium blocks or downloads never shows both.
    """
    frame = page.locator(frame_selector)
    deadline = time.monotonic() + DEFAULT_TIMEOUT_MS / 1000
    while True:
        histogram = Image.open(io.BytesIO(frame.screenshot())).convert("L").histogram()
        total = sum(histogram)
        white_share = sum(histogram[245:]) / total
        dark_share = sum(histogram[:80]) / total
        if white_share >= MIN_SHADE_SHARE and dark_share >= MIN_SHADE_SHARE:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{frame_selector} shows no PDF page after {DEFAULT_TIMEOUT_MS} ms "
                f"(white {white_share:.0%}, dark {dark_share:.0%} of the frame)"
            )
        page.wait_for_timeout(100)


def detail_cell(page: Page, text: str) -> Locator:
    """Return the detail-table cells whose whole text is ``text``."""
    return page.locator(".mail-detail td").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


# --- Journeys ---------------------------------------------------------------


@pytest.mark.browser
def test_registered_letter_reaches_department(
    page: Page, live_server: str, page_errors: list[str], screenshot: Callable[[str], Path]
) -> None:
    subject = "Demande de premier titre de séjour – M. Rachid Œhmichen"
    arrival = days_ago(2)
    arrival_text = arrival.strftime("%d/%m/%Y")
    sender = {"civility": "Mme", "first_name": "Hélène", "last_name": "Lefèvre-Œhmichen", "city": "Montreuil"}
    file_name = "Lettre d’Hélène – séjour.pdf"
    pdf = letter_pdf(subject, sender, arrival - timedelta(days=3))
    year = today_in_paris().year

    # The mail room registers the scanned letter of a new sender.
    login(page, live_server, "courrier")
    screenshot("home-courrier")
    open_registration_form(page, RESIDENCE_PERMIT)
    # Left as it is, the routing rules choose the department.
    expect(page.locator("#handling_department")).to_have_value("")

    search_directory(page, "lefè")
    expect(page.locator("#correspondent-results .list-group-item")).to_have_count(1)
    expect(page.locator("#correspondent-results .correspondent-result")).to_have_count(0)

    page.fill("#subject", subject)
    page.fill("#arrival_date", arrival_text)
    page.fill("#field_foreign_national_number", "0751234567")
    page.select_option("#field_permit_kind", "first_request")
    fill_new_sender(page, sender["civility"], sender["first_name"], sender["last_name"], sender["city"])
    page.set_input_files("#attachments", files=[{"name": file_name, "mimeType": "application/pdf", "buffer": pdf}])
    screenshot("form-filled")

    mail_id, chrono = submit_registration(page)
    screenshot("detail-after-registration")
    assert re.fullmatch(rf"PREF75/{year}/A/\d{{6}}", chrono), f"unexpected number format {chrono!r}"
    expect(page.locator(".alert-success")).to_contain_text(chrono)
    expect(page.locator(".mail-subject")).to_have_text(subject)
    expect(page.locator("td.correspondent")).to_contain_text("Mme Hélène Lefèvre-Œhmichen")
    expect(detail_cell(page, arrival_text)).to_have_count(1)
    expect(page.locator(".mail-detail")).to_contain_text(f"({RESIDENCE_PERMIT_DEPARTMENT})")
    expect(page.locator("li[data-attachment] a.download")).to_have_text(file_name)

    # A second letter from the same sender: the agent picks her in the directory.
    open_registration_form(page, RESIDENCE_PERMIT)
    search_directory(page, "lefe oehm")
    result = page.locator("#correspondent-results .correspondent-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("Hélène Lefèvre-Œhmichen")
    screenshot("directory-search")
    result.click()
    expect(page.locator("#correspondent-picked")).to_be_visible()
    expect(page.locator("#correspondent-picked .picked-name")).to_have_text("Mme Hélène Lefèvre-Œhmichen")
    expect(page.locator("#correspondent-new")).to_be_hidden()
    expect(page.locator("#correspondent_id")).to_have_value(re.compile(r"^\d+$"))

    page.fill("#subject", "Pièces complémentaires – M. Rachid Œhmichen")
    page.fill("#arrival_date", arrival_text)
    page.fill("#field_foreign_national_number", "0751234567")
    page.select_option("#field_permit_kind", "first_request")
    _second_id, second_chrono = submit_registration(page)
    assert second_chrono != chrono
    expect(page.locator("td.correspondent")).to_have_count(1)
    expect(page.locator("td.correspondent")).to_contain_text("Mme Hélène Lefèvre-Œhmichen")

    # The residence permit office finds the letter in its basket.
    logout(page, live_server)
    login(page, live_server, "sejour")
    open_basket(page, "to_process")
    row = page.locator(f'tr[data-chrono="{chrono}"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text(subject)
    expect(row).to_contain_text(arrival_text)
    expect(page.locator(f'tr[data-chrono="{second_chrono}"]')).to_have_count(1)
    screenshot("basket-sejour")

    row.locator("a").first.click()
    page.wait_for_url(re.compile(rf"/mail/{mail_id}$"))
    expect(page.locator("#mail-chrono")).to_have_text(chrono)

    # The letter is previewed inline.
    attachment_id = page.locator("li[data-attachment]").get_attribute("data-attachment")
    preview_src = page.locator("iframe#pdf-preview").get_attribute("src")
    assert preview_src == f"/attachments/{attachment_id}/preview"
    wait_for_rendered_pdf(page, "iframe#pdf-preview")
    screenshot("detail-sejour")
    preview = page.request.get(f"{live_server}{preview_src}")
    assert preview.status == 200
    assert preview.headers["content-type"] == "application/pdf"
    assert preview.headers["content-disposition"].startswith("inline;")
    assert f"filename*=UTF-8''{quote(file_name, safe='')}" in preview.headers["content-disposition"]
    assert preview.body() == pdf

    # The download keeps the accented file name and the exact bytes.
    with page.expect_download() as download_info:
        page.click("li[data-attachment] a.download")
    download = download_info.value
    assert download.suggested_filename == file_name
    assert Path(download.path()).read_bytes() == pdf

    assert page_errors == []


@pytest.mark.browser
def test_arrival_date_kept_after_error(
    page: Page, live_server: str, page_errors: list[str], screenshot: Callable[[str], Path]
) -> None:
    arrival = ambiguous_past_date()
    typed = arrival.strftime("%d/%m/%Y")
    subject = "Renouvellement de carte de séjour – Mme Aïcha Benoît"

    login(page, live_server, "courrier")
    open_registration_form(page, RESIDENCE_PERMIT)
    page.fill("#subject", subject)
    page.fill("#arrival_date", typed)
    page.fill("#field_foreign_national_number", "0759876543")
    fill_new_sender(page, "Mme", "Aïcha", "Benoît")

    # The kind of request is required and left empty.
    submit_expecting_errors(page)
    screenshot("missing-field")
    expect(page.locator('[data-error-for="field_permit_kind"]')).to_have_count(1)
    expect(page.locator("#arrival_date")).to_have_value(typed)
    expect(page.locator('[data-error-for="arrival_date"]')).to_have_count(0)
    expect(page.locator("#subject")).to_have_value(subject)
    expect(page.locator("#correspondent_last_name")).to_have_value("Benoît")

    page.select_option("#field_permit_kind", "renewal")
    _mail_id, chrono = submit_registration(page)
    screenshot("detail")
    expect(detail_cell(page, typed)).to_have_count(1)

    open_basket(page, "registered_by_me")
    expect(page.locator(f'tr[data-chrono="{chrono}"]')).to_contain_text(typed)

    assert page_errors == []


@pytest.mark.browser
def test_markup_in_mail_shown_literally(
    page: Page, live_server: str, page_errors: list[str], screenshot: Callable[[str], Path]
) -> None:
    subject = "<img src=x onerror=alert(document.domain)> Réclamation"
    last_name = "<svg onload=alert(1)>"
    file_name = "<img src=x onerror=alert(2)>.pdf"
    pdf = letter_pdf("Réclamation", {"last_name": "Martin"}, days_ago(3))
    dialogs: list[str] = []

    def record_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", record_dialog)

    login(page, live_server, "courrier")
    open_registration_form(page, RESIDENCE_PERMIT)
    page.fill("#subject", subject)
    page.fill("#arrival_date", days_ago(1).strftime("%d/%m/%Y"))
    page.fill("#field_foreign_national_number", "0751112223")
    page.select_option("#field_permit_kind", "renewal")
    fill_new_sender(page, "", "", last_name)
    page.set_input_files("#attachments", files=[{"name": file_name, "mimeType": "application/pdf", "buffer": pdf}])
    _mail_id, chrono = submit_registration(page)

    # Detail page: subject, sender and file name are text, not elements.
    screenshot("detail")
    expect(page.locator(".mail-subject")).to_have_text(subject)
    expect(page.locator("td.correspondent")).to_have_text(last_name)
    expect(page.locator("li[data-attachment] a.download")).to_have_text(file_name)
    expect(page.locator("iframe#pdf-preview")).to_have_attribute("title", file_name)
    expect(page.locator("img[src=x]")).to_have_count(0)
    expect(page.locator("svg")).to_have_count(0)

    # Basket list.
    open_basket(page, "registered_by_me")
    screenshot("basket")
    row = page.locator(f'tr[data-chrono="{chrono}"]')
    expect(row).to_contain_text(subject)
    expect(page.locator("img[src=x]")).to_have_count(0)

    # Directory search results are built by script: the name must stay text there too.
    open_registration_form(page, RESIDENCE_PERMIT)
    search_directory(page, "svg onload")
    result = page.locator("#correspondent-results .correspondent-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text(last_name)
    screenshot("directory-search")
    expect(page.locator("svg")).to_have_count(0)

    assert dialogs == []
    assert page_errors == []


@pytest.mark.browser
def test_files_over_limit_keep_form(
    page: Page, live_server: str, page_errors: list[str], app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server refuses a larger request without reading its form: the browser must not send it.
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2 * 1024 * 1024)
    subject = "Demande de titre de séjour – dossier numérisé en couleur"
    scan = b"%PDF-1.4\n" + b"0" * (1200 * 1024)

    login(page, live_server, "courrier")
    open_registration_form(page, RESIDENCE_PERMIT)
    page.fill("#subject", subject)
    page.set_input_files("#attachments", files=[
        {"name": "scan-page-1.pdf", "mimeType": "application/pdf", "buffer": scan},
        {"name": "scan-page-2.pdf", "mimeType": "application/pdf", "buffer": scan},
    ])
    expect(page.locator("#files-over-limit")).to_contain_text("2 Mo")
    form_url = page.url
    page.click("#register-submit")

    expect(page.locator("#files-over-limit")).to_be_visible()
    expect(page.locator("#subject")).to_have_value(subject)
    assert page.url == form_url
    page.set_input_files("#attachments", files=[
        {"name": "scan-page-1.pdf", "mimeType": "application/pdf", "buffer": scan},
    ])
    expect(page.locator("#files-over-limit")).to_be_hidden()
    # Just under the limit, the typed fields and the multipart headers would take the request over it.
    page.set_input_files("#attachments", files=[
        {"name": "scan-complet.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024 - 100)},
    ])
    expect(page.locator("#files-over-limit")).to_be_visible()
    assert page_errors == []


def test_double_click_sends_form_once(page: Page, live_server: str, page_errors: list[str]) -> None:
    login(page, live_server, "courrier")
    open_registration_form(page, RESIDENCE_PERMIT)
    page.fill("#subject", "Demande de renouvellement envoyée d'un double clic")
    # Counts the sendings and keeps the page, as a slow network would while the agent clicks again.
    page.evaluate("""() => document.getElementById('registration-form').addEventListener('submit', (event) => {
        window.sendings = (window.sendings || 0) + 1;
        event.preventDefault();
    })""")

    page.dblclick("#register-submit")

    assert page.evaluate("() => window.sendings") == 1
    button = page.locator("#register-submit")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Enregistrement…")
    assert page_errors == []
