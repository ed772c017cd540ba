"""Processing journey in a real browser between two agents of different departments.

Zoé N'Diaye (DMI-SSE-BPT) asks Gaël Le Bihan (DMI-SSE-BRT) for an opinion,
he gives it, she puts him in copy, he marks it read, she closes the mail,
reopens it and redirects it to his office.  Elements are selected by id,
name or data attribute, never by visible text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from app.correspondents.operations import CorrespondentInput
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.browser.conftest import login, logout
from tests.conftest import user_context


def _register_first_permit(app) -> tuple[int, int]:
    with app.app_context():
        mail = register_mail(
            user_context("courrier"),
            Registration(
                mail_type="residence_permit_request", subject="Demande de premier titre de séjour",
                arrival_date=today_in_paris() - timedelta(days=1),
                fields={"foreign_national_number": "0123456789", "permit_kind": "first_request",
                        "nationality": "Sénégalaise"},
                correspondent=CorrespondentInput(last_name="Diallo", first_name="Awa", confirm_new=True),
            ),
        )
        return mail.id, user_context("renouvellement").user_id


def _run_action(page: Page, action_id: str, fill: Callable[[Page], None] | None = None) -> None:
    page.click(f'details[data-action="{action_id}"] summary')
    if fill is not None:
        fill(page)
    page.click(f"#action-{action_id} button[type=submit]")
    expect(page.locator(".alert-success"), f"{action_id} did not succeed").to_be_visible()


def _history_events(page: Page) -> list[str]:
    return page.locator("table.history tr[data-event]").evaluate_all("rows => rows.map(row => row.dataset.event)")


def test_redirect_copy_opinion_close_reopen(
    app, live_server: str, page: Page, page_errors: list[str], screenshot: Callable[[str], Path]
):
    mail_id, colleague_id = _register_first_permit(app)
    mail_url = f"{live_server}/mail/{mail_id}"

    # Zoé asks Gaël for an opinion.
    login(page, live_server, "sejour")
    page.goto(mail_url)
    _run_action(page, "qualify")
    _run_action(page, "ask_opinion", lambda p: p.select_option("#ask_opinion-user", str(colleague_id)))
    expect(page.locator('#distribution tr[data-role="opinion"][data-target="renouvellement"]')).to_be_visible()
    screenshot("opinion-asked")
    logout(page, live_server)

    # Gaël finds it among the opinions to give and answers.
    login(page, live_server, "renouvellement")
    page.goto(f"{live_server}/mail/basket/opinions_to_give")
    page.click(f'tr[data-mail="{mail_id}"] a')
    _run_action(page, "give_opinion", lambda p: p.fill("#give_opinion-comment", "Avis favorable, dossier complet."))
    expect(page.locator("blockquote.opinion-answer")).to_contain_text("Avis favorable, dossier complet.")
    logout(page, live_server)

    # Zoé sees the answer and puts Gaël in copy.
    login(page, live_server, "sejour")
    page.goto(mail_url)
    expect(page.locator("blockquote.opinion-answer")).to_contain_text("Avis favorable")
    _run_action(page, "copy", lambda p: p.select_option("#copy-users", [str(colleague_id)]))
    logout(page, live_server)

    # Gaël sees the copy unread, then marks it read.
    login(page, live_server, "renouvellement")
    page.goto(f"{live_server}/mail/basket/in_copy")
    expect(page.locator(f'tr[data-mail="{mail_id}"].unread')).to_be_visible()
    screenshot("copy-unread")
    page.click(f'tr[data-mail="{mail_id}"] a')
    _run_action(page, "mark_read")
    page.goto(f"{live_server}/mail/basket/in_copy")
    expect(page.locator(f'tr[data-mail="{mail_id}"]')).not_to_have_class("unread")
    logout(page, live_server)

    # Zoé closes, reopens, then redirects the mail to Gaël's office.
    login(page, live_server, "sejour")
    page.goto(mail_url)
    _run_action(page, "close")
    expect(page.locator('details[data-action="reopen"]')).to_be_visible()
    _run_action(page, "reopen", lambda p: p.fill("#reopen-comment", "Pièce complémentaire reçue."))
    _run_action(page, "redirect", lambda p: (
        p.select_option("#redirect-department", "DMI-SSE-BRT"),
        p.select_option("#redirect-assignee", str(colleague_id)),
    ))
    expect(page).to_have_url(f"{live_server}/")
    logout(page, live_server)

    # Gaël now has it to process, with the whole history.
    login(page, live_server, "renouvellement")
    page.goto(f"{live_server}/mail/basket/to_process")
    expect(page.locator(f'tr[data-mail="{mail_id}"]')).to_be_visible()
    page.click(f'tr[data-mail="{mail_id}"] a')
    screenshot("redirected")
    assert _history_events(page) == [
        "registered", "qualify", "ask_opinion", "give_opinion", "copy", "mark_read", "close", "reopen", "redirect",
    ]
    assert page_errors == []
