"""The cells of a basket page's rows: link, labels, dates, lateness, assignee."""

from __future__ import annotations

import re
from datetime import timedelta

from markupsafe import escape

from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context

ROW = re.compile(r'<tr class="([^"]*)" data-chrono="([^"]+)" data-mail="(\d+)".*?</tr>', re.S)
CELL = re.compile(r"<td>(.*?)</td>", re.S)


def _register(app, subject: str, days_ago: int, assignee: str | None) -> tuple[int, str]:
    with app.app_context():
        mail = register_mail(
            user_context("courrier"),
            Registration(
                mail_type="public_complaint", subject=subject, arrival_date=today_in_paris() - timedelta(days=days_ago),
                handling_department="DMI-SSE-BPT",
                assignee_id=user_context(assignee).user_id if assignee else None,
                correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
            ),
        )
        if assignee is None:
            # Routing names an assignee: take it away, as a head of department may.
            mail.assignee_id = None
            db.session.commit()
        return mail.id, mail.chrono


def _rows(page: str) -> dict[int, tuple[str, str, list[str]]]:
    """Return the rows of a basket page by mail id: class, number and cells."""
    return {
        int(match.group(3)): (match.group(1), match.group(2), CELL.findall(match.group(0)))
        for match in ROW.finditer(page)
    }


def test_rows_show_mail_values(app, client_as):
    late_id, late_chrono = _register(app, "Réclamation <b>ancienne</b>", 120, "sejour")
    recent_id, _ = _register(app, "Réclamation récente", 1, None)
    with app.app_context():
        agent_name = user_context("sejour").display_name

    page = client_as("sejour").get("/mail/basket/to_process").get_data(as_text=True)
    rows = _rows(page)
    late_class, chrono, late_cells = rows[late_id]
    recent_class, _, recent_cells = rows[recent_id]
    arrival = (today_in_paris() - timedelta(days=120)).strftime("%d/%m/%Y")

    assert chrono == late_chrono
    # The first cell is the box ticked for a bulk action.
    assert f'value="{late_id}"' in late_cells[0]
    assert f'<a href="/mail/{late_id}">{late_chrono}</a>' in late_cells[1]
    assert late_cells[2] == str(escape("Réclamation d'un usager"))
    assert "&lt;b&gt;ancienne&lt;/b&gt;" in late_cells[3]
    assert late_cells[4] == arrival
    assert 'label-danger">En retard</span>' in late_cells[5]
    assert late_class.startswith("danger")
    assert late_cells[6] == "Nouveau"
    assert late_cells[7] == str(escape(agent_name))
    assert recent_cells[7] == "—"
    assert "En retard" not in recent_cells[5]
    assert not recent_class.startswith("danger")
