"""Signature book journey in a real browser: a three-step circuit, a rejection, then a PAdES signature.

Zoé N'Diaye (DMI-SSE-BPT) sends a reply to the signature book by hand: François
Lefèvre-Giraud approves, Maëlle Roussel (another direction, who sees the mail
only as a circuit member) rejects it back to him with a comment, he approves
again, she approves, and Éric Vasseur signs. The signed PDF downloaded from the
mail page validates with pyHanko against the test CA made here. Elements are
selected by id, name or data attribute, never by visible text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from app.extensions import db
from app.mail.models import Mail
from tests.browser.conftest import login, logout
from tests.conftest import user_context
from tests.integration.test_signature import (
    add_reply,
    make_test_certificate,
    register_residence_request,
    validate_pades,
)


def _open_from_book(page: Page, base_url: str, chrono: str) -> None:
    page.goto(f"{base_url}/signature/")
    row = page.locator(f'#book tr[data-chrono="{chrono}"]')
    expect(row, f"{chrono} is not in the signature book").to_be_visible()
    row.locator("a.open-circuit").click()
    expect(page.locator("#frozen-pdf"), "the frozen PDF is not shown").to_be_visible()


def _approve(page: Page, base_url: str, username: str, chrono: str) -> None:
    login(page, base_url, username)
    _open_from_book(page, base_url, chrono)
    page.click("#approve-button")
    expect(page.locator(".alert-success"), f"approval by {username} did not succeed").to_be_visible()
    logout(page, base_url)


def test_three_step_circuit_with_rejection(
    app, live_server: str, page: Page, page_errors: list[str], screenshot: Callable[[str], Path], tmp_path: Path
):
    certificate = make_test_certificate(tmp_path)
    app.config.update(SIGNATURE_PKCS12=str(certificate.pkcs12_path), SIGNATURE_PKCS12_PASSWORD=certificate.password)
    try:
        with app.app_context():
            mail_id = register_residence_request("Demande de premier titre de séjour")
            add_reply(mail_id)
            chrono = db.session.get(Mail, mail_id).chrono
            members = {name: str(user_context(name).user_id) for name in ("chef.sejour", "legalite", "secretaire.general")}
        mail_url = f"{live_server}/mail/{mail_id}"

        # Zoé builds the circuit by hand: two approvers one after the other, then the signatory.
        login(page, live_server, "sejour")
        page.goto(mail_url)
        page.click("#start-circuit summary")
        page.select_option("#step-1-users", members["chef.sejour"])
        page.select_option("#step-2-users", members["legalite"])
        page.select_option("#step-3-kind", "signature")
        page.select_option("#step-3-users", members["secretaire.general"])
        screenshot("circuit-built")
        page.click("#start-circuit-button")
        expect(page.locator(".signature-circuit"), "the circuit page did not open").to_have_attribute("data-step", "1")
        logout(page, live_server)

        _approve(page, live_server, "chef.sejour", chrono)

        # Maëlle rejects back to step 1: first without a comment, which is refused, then with one.
        login(page, live_server, "legalite")
        _open_from_book(page, live_server, chrono)
        screenshot("step-2")
        page.select_option("#reject-back-to", "previous")
        page.click("#reject-button")
        expect(page.locator(".alert-danger"), "a rejection without comment was accepted").to_be_visible()
        expect(page.locator(".signature-circuit")).to_have_attribute("data-step", "2")
        page.select_option("#reject-back-to", "previous")
        page.fill("#reject-comment", "Citer l'article L313-11 du CESEDA.")
        page.click("#reject-button")
        expect(page.locator(".signature-circuit")).to_have_attribute("data-step", "1")
        logout(page, live_server)

        _approve(page, live_server, "chef.sejour", chrono)
        _approve(page, live_server, "legalite", chrono)

        # Éric signs.
        login(page, live_server, "secretaire.general")
        _open_from_book(page, live_server, chrono)
        page.click("#sign-button")
        expect(page.locator(".signature-circuit"), "the circuit is not signed").to_have_attribute("data-state", "signed")
        page.goto(mail_url)
        screenshot("signed")

        events = page.locator("table.history tr[data-event]").evaluate_all("rows => rows.map(row => row.dataset.event)")
        circuit_events = [event for event in events if event.startswith("circuit_")]
        assert circuit_events == [
            "circuit_started", "circuit_approved", "circuit_rejected", "circuit_approved", "circuit_approved",
            "circuit_signed",
        ]
        expect(page.locator('table.history tr[data-event="circuit_rejected"] .history-comment')).to_contain_text("L313-11")
        expect(page.locator('tr[data-field="status"]'), "the mail did not move on after the signature").to_contain_text("À envoyer")

        link = page.locator("ul.attachments a.download").last
        expect(link).to_be_visible()
        response = page.request.get(f"{live_server}{link.get_attribute('href')}")
        assert response.status == 200
        status = validate_pades(response.body(), certificate.ca_der)
        assert status.intact
        assert status.valid
        assert status.trusted
        assert page_errors == []
    finally:
        app.config.update(SIGNATURE_PKCS12="", SIGNATURE_PKCS12_PASSWORD="")
