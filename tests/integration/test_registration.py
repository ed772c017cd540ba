"""Registration through the operation and through the form, with its hard cases."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.attachments.models import Attachment
from app.attachments.operations import Upload, content_store
from app.core.db import write_transaction
from app.core.errors import PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.correspondents.operations import CorrespondentInput, DuplicateCorrespondent, resolve_correspondent_id
from app.demo.letters import render_letter_pdf
from app.extensions import db
from app.mail.models import ChronoCounter, HistoryEntry, Mail
from app.mail.operations import Registration, SubmissionReused, _add_new_mail, register_mail, today_in_paris
from app.search.models import OutboxEvent
from tests.conftest import csrf_token, user_context

CHRONO_PATTERN = re.compile(r"^PREF75/\d{4}/A/\d{6}$")


def _pdf(subject: str = "Demande de titre de séjour") -> bytes:
    mail = {"category": "incoming", "subject": subject, "letter_date": date(2026, 12, 1), "body_paragraphs": ["Madame, Monsieur,"]}
    correspondent = {"kind": "person", "civility": "M.", "first_name": "Rachid", "last_name": "Œhmichen", "organisation": None,
                     "address": "3 rue de la Paix", "postcode": "75002", "city": "Paris", "email": None, "phone": None}
    return render_letter_pdf(mail, correspondent)


def _residence_request(**changes) -> Registration:
    values = dict(
        mail_type="residence_permit_request",
        subject="Demande de premier titre de séjour",
        arrival_date=today_in_paris() - timedelta(days=1),
        fields={"foreign_national_number": "0123456789", "permit_kind": "first_request"},
        correspondent=CorrespondentInput(last_name="Œhmichen", first_name="Rachid"),
    )
    values.update(changes)
    return Registration(**values)


def test_registration_writes_everything(app_context):
    clerk = user_context("courrier")
    pdf = _pdf()
    mail = register_mail(clerk, _residence_request(uploads=[Upload(io.BytesIO(pdf), "lettre.pdf", kind="letter")]))

    assert CHRONO_PATTERN.match(mail.chrono)
    assert mail.status == "new"
    assert mail.handling_department.code == "DMI-SSE-BPT"
    assert mail.due_date is not None
    assert mail.fields == {"foreign_national_number": "0123456789", "permit_kind": "first_request"}
    assert [link.correspondent.last_name for link in mail.correspondents] == ["Œhmichen"]
    assert [entry.event for entry in mail.history] == ["registered"]
    assert mail.history[0].actor_id == clerk.user_id
    outbox = db.session.execute(select(OutboxEvent).where(OutboxEvent.entity_id == mail.id)).scalars().all()
    assert [(row.entity, row.operation) for row in outbox] == [("mail", "upsert")]
    attachment = mail.attachments[0]
    assert attachment.size == len(pdf)
    assert attachment.content_type == "application/pdf"
    assert content_store().read_verified(attachment.sha256).read_bytes() == pdf


def test_due_date_counts_working_days(app_context):
    clerk = user_context("courrier")
    # Received Friday 6 November 2026; 11 November is a public holiday.
    mail = register_mail(clerk, _residence_request(arrival_date=date(2026, 11, 6)))
    # 30 working days after 6 Nov 2026, skipping 11 Nov and 25 Dec... counted by the calendar.
    from app.deadlines.calendar import get_calendar

    assert mail.due_date == get_calendar("metropole").add_working_days(date(2026, 11, 6), 30)
    assert mail.due_date == date(2026, 12, 21)


def test_agent_cannot_register_incoming(app_context):
    with pytest.raises(PermissionDenied):
        register_mail(user_context("sejour"), _residence_request())


def test_invalid_fields_rejected_all_at_once(app_context):
    with pytest.raises(ValidationFailed) as failure:
        register_mail(
            user_context("courrier"),
            _residence_request(subject=" ", fields={"foreign_national_number": "12AB", "permit_kind": "other"}),
        )
    errors = failure.value.field_errors
    assert "subject" in errors
    assert "field_foreign_national_number" in errors
    assert "field_permit_kind" in errors
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 0


def test_future_arrival_rejected(app_context):
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), _residence_request(arrival_date=today_in_paris() + timedelta(days=1)))
    assert "arrival_date" in failure.value.field_errors


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("12 345,50", "12345.50"), ("12\u00a0345,50", "12345.50"), ("12\u202f345,50", "12345.50"), ("150", "150.00"),
     ("1 234,500", "1234.50")],
)
def test_french_amounts_accepted(app_context, typed, stored):
    registration = Registration(
        mail_type="grant_request", subject="Demande de subvention", fields={"amount_requested": typed},
        correspondent=CorrespondentInput(kind="organisation", organisation="Association Les Sœurs de la Charité"),
    )
    mail = register_mail(user_context("courrier"), registration)
    assert mail.fields["amount_requested"] == stored
    assert Decimal(mail.fields["amount_requested"]) == Decimal(stored)


def _amount_errors(typed: str) -> str:
    """Return the messages of the amount field when a grant request is registered with ``typed``."""
    registration = Registration(
        mail_type="grant_request", subject="Demande de subvention", fields={"amount_requested": typed},
        correspondent=CorrespondentInput(kind="organisation", organisation="Association Saint-Étienne"),
    )
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), registration)
    return " ".join(failure.value.field_errors["field_amount_requested"])


@pytest.mark.parametrize("typed", ["1.234,5", "12,345.50", "douze"])
def test_ambiguous_amounts_rejected(app_context, typed):
    assert _amount_errors(typed)


def test_amount_message_names_french_format(app_context):
    message = _amount_errors("12,345.50")

    assert "12 345,50" in message
    assert "12,345.50" not in message


@pytest.mark.parametrize("typed", ["1 234,567", "0,001"])
def test_amount_with_three_decimals_rejected(app_context, typed):
    assert "deux décimales" in _amount_errors(typed)


@pytest.mark.parametrize(("typed", "message"), [
    ("1" + "0" * 28, "La valeur doit être inférieure ou égale à 999\u202f999\u202f999\u202f999\u202f999,99."),
    ("-" + "9" * 16, "La valeur doit être supérieure ou égale à -999\u202f999\u202f999\u202f999\u202f999,99."),
])
def test_amount_beyond_fifteen_digits_refused_without_declared_limit(app_context, typed, message):
    from app.configuration.operations import current_configuration
    from app.mail.fields import clean_field_values

    grant = current_configuration().mail_types["grant_request"]
    unlimited = grant.model_copy(update={"fields": [
        field.model_copy(update={"max": None, "min": None}) for field in grant.fields
    ]})
    values, errors = clean_field_values(unlimited, {"amount_requested": typed}, "fr")
    assert errors == {"amount_requested": [message]}


@pytest.mark.parametrize(("typed", "accepted"), [("123 456 789 00012", True), ("12345678900012", True), ("123456789 0001", False)])
def test_siret_written_in_groups_accepted(app_context, typed, accepted):
    registration = Registration(
        mail_type="grant_request", subject="Demande de subvention", fields={"amount_requested": "5 000", "association_siret": typed},
        correspondent=CorrespondentInput(kind="organisation", organisation="Association Saint-Éloi des Lilas"),
    )
    if accepted:
        assert register_mail(user_context("courrier"), registration).fields["association_siret"] == typed
    else:
        with pytest.raises(ValidationFailed) as failure:
            register_mail(user_context("courrier"), registration)
        assert "123 456 789 00012" in " ".join(failure.value.field_errors["field_association_siret"])


def test_failed_registration_returns_number(app_context):
    clerk = user_context("courrier")
    first = register_mail(clerk, _residence_request())
    db.session.add(Correspondent(last_name="Lefèvre-Giraud", first_name="Hélène", email="h.lefevre@example.org",
                                 name_key="helene lefevre giraud", email_key="h.lefevre@example.org"))
    db.session.commit()
    # The duplicate is detected inside the transaction, after the number was reserved.
    with pytest.raises(DuplicateCorrespondent):
        register_mail(clerk, _residence_request(correspondent=CorrespondentInput(
            first_name="HELENE", last_name="LEFEVRE GIRAUD", email="H.Lefevre@Example.org")))
    picked = CorrespondentInput(id=first.correspondents[0].correspondent_id)
    second = register_mail(clerk, _residence_request(correspondent=picked))
    assert second.chrono_number == first.chrono_number + 1


def test_duplicate_correspondent_proposed(app_context):
    clerk = user_context("courrier")
    register_mail(clerk, _residence_request(correspondent=CorrespondentInput(
        first_name="Hélène", last_name="Lefèvre-Giraud", email="h.lefevre@example.org", phone="+33 6 00 00 00 01")))

    for variant in (
        CorrespondentInput(first_name="HELENE", last_name="LEFEVRE GIRAUD", email="H.Lefevre@Example.org"),
        CorrespondentInput(first_name="Helene", last_name="Lefevre-Giraud", phone="06 00 00 00 01"),
    ):
        with pytest.raises(DuplicateCorrespondent) as failure:
            register_mail(clerk, _residence_request(correspondent=variant))
        assert [row.last_name for row, match in failure.value.candidates] == ["Lefèvre-Giraud"]

    other = CorrespondentInput(first_name="Hélène", last_name="Lefèbvre", email="helene.lefebvre@example.net")
    mail = register_mail(clerk, _residence_request(correspondent=other))
    assert mail.correspondents[0].correspondent.last_name == "Lefèbvre"
    assert db.session.execute(select(func.count()).select_from(Correspondent)).scalar_one() == 2


def test_organisation_typed_alone_found_behind_its_contact_person(app_context):
    clerk = user_context("courrier")
    grant = dict(mail_type="grant_request", subject="Demande de subvention", fields={"amount_requested": "5 000"})
    register_mail(clerk, Registration(**grant, correspondent=CorrespondentInput(
        kind="organisation", civility="M.", first_name="Étienne", last_name="François",
        organisation="Comité des fêtes de Lagny-sur-Marne")))

    with pytest.raises(DuplicateCorrespondent) as failure:
        register_mail(clerk, Registration(**grant, correspondent=CorrespondentInput(
            kind="organisation", organisation="Comité des fêtes de Lagny-sur-Marne")))

    assert [row.last_name for row, match in failure.value.candidates] == ["François"]


def test_confirmed_new_correspondent_created(app_context):
    clerk = user_context("courrier")
    register_mail(clerk, _residence_request(correspondent=CorrespondentInput(first_name="Hélène", last_name="Lefèvre-Giraud")))
    register_mail(clerk, _residence_request(correspondent=CorrespondentInput(
        first_name="Hélène", last_name="Lefèvre-Giraud", confirm_new=True)))
    assert db.session.execute(select(func.count()).select_from(Correspondent)).scalar_one() == 2


def test_path_traversal_names_stay_in_store(app_context, caplog):
    names = ["../../../app/config/settings.yaml", "../../static/index.html", "C:\\Windows\\win.ini", "rapport\x00.pdf", ".", ".."]
    pdf = _pdf()
    uploads = [Upload(io.BytesIO(pdf), name) for name in names]
    mail = register_mail(user_context("courrier"), _residence_request(uploads=uploads))

    shown = [attachment.display_name for attachment in mail.attachments]
    assert shown[0] == "settings.yaml"
    assert shown[1] == "index.html"
    assert shown[2] == "win.ini"
    assert "/" not in "".join(shown)
    assert "\x00" not in "".join(shown)
    assert shown[4].startswith("piece_jointe")
    root = Path(content_store().root).resolve()
    for attachment in mail.attachments:
        assert content_store().path_for(attachment.sha256).resolve().is_relative_to(root)
    assert any("suspicious attachment name" in record.getMessage() for record in caplog.records)


def test_executable_renamed_pdf_rejected(app_context):
    upload = Upload(io.BytesIO(b"MZ\x90\x00" + b"\x00" * 200), "scan.pdf")
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), _residence_request(uploads=[upload]))
    assert "attachments" in failure.value.field_errors
    assert db.session.execute(select(func.count()).select_from(Attachment)).scalar_one() == 0


def test_counter_is_per_category_and_year(app_context):
    clerk = user_context("courrier")
    register_mail(clerk, _residence_request())
    agent = user_context("sejour")
    memo = register_mail(agent, Registration(mail_type="internal_memo", subject="Note interne", handling_department="DMI-SSE"))
    assert re.match(r"^PREF75/\d{4}/I/000001$", memo.chrono)
    counters = db.session.execute(select(ChronoCounter.category, ChronoCounter.last_number)).all()
    assert sorted(counters) == [("incoming", 1), ("internal", 1)]


def test_history_written_with_actor(app_context):
    mail = register_mail(user_context("courrier"), _residence_request())
    entry = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id)).scalar_one()
    assert entry.actor.username == "courrier"
    assert entry.details["handling_department"] == "DMI-SSE-BPT"
    assert entry.at.tzinfo is not None


def test_registration_after_rolled_back_insert(app_context):
    clerk = user_context("courrier")
    first = register_mail(clerk, _residence_request())
    values = {column.key: getattr(first, column.key) for column in Mail.__table__.columns if column.key != "id"}
    values.update(chrono=f"{first.chrono}-R", chrono_number=first.chrono_number + 1000)
    picked = CorrespondentInput(id=first.correspondents[0].correspondent_id)
    rolled_back = []

    # The mail object of a rolled-back insert stays in the session's identity map, expired, while it is referenced.
    with pytest.raises(RuntimeError):
        with write_transaction():
            mail = _add_new_mail(values)
            rolled_back.append((mail.id, mail))
            raise RuntimeError("roll the insert back")
    second = register_mail(clerk, _residence_request(subject="Demande de renouvellement", correspondent=picked))

    if db.engine.dialect.name == "sqlite":
        # SQLite gives the next mail the rowid of the rolled-back one, the case this test is for.
        assert second.id == rolled_back[0][0]
    assert second.chrono_number == first.chrono_number + 1
    assert second.subject == "Demande de renouvellement"
    assert db.session.get(Mail, second.id) is second
    assert [link.correspondent.last_name for link in second.correspondents] == ["Œhmichen"]
    outbox = db.session.execute(select(OutboxEvent.entity_id).where(OutboxEvent.entity_id == second.id)).scalars().all()
    assert outbox == [second.id]


def test_too_many_files_rejected_unwritten(app_context, monkeypatch):
    monkeypatch.setitem(app_context.config, "MAX_ATTACHMENTS_PER_MAIL", 2)
    pdf = _pdf()
    temporary = set(content_store().tmp_dir.iterdir())
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), _residence_request(
            subject=" ", uploads=[Upload(io.BytesIO(pdf), f"page-{number}.pdf") for number in range(3)],
        ))
    errors = failure.value.field_errors
    assert errors["attachments"] == [
        "Un courrier s'enregistre avec 2 fichiers au plus, et 3 ont été choisis : numérisez les pages d'un même document en un seul PDF."
    ]
    assert "subject" in errors
    assert set(content_store().tmp_dir.iterdir()) == temporary
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 0


def test_registration_counts_attachments(app_context):
    from app.statistics.cli import rebuild
    from app.statistics.models import MailStatistics, StatisticsCount

    def counter_rows() -> set[tuple]:
        rows = db.session.execute(select(StatisticsCount.__table__).where(StatisticsCount.count != 0)).all()
        return {tuple(row) for row in rows}

    pdf = _pdf()
    mail = register_mail(user_context("courrier"), _residence_request(
        uploads=[Upload(io.BytesIO(pdf), "lettre.pdf", kind="letter"), Upload(io.BytesIO(pdf), "copie.pdf")]
    ))

    facts = db.session.execute(select(MailStatistics).where(MailStatistics.mail_id == mail.id)).scalar_one()
    assert facts.attachments == 2
    assert facts.acknowledgement == 0
    incremental = counter_rows()
    assert rebuild() == 1
    assert counter_rows() == incremental


def test_registration_facts_match_database(app_context):
    """The statistics facts registration gives at the commit equal those read back from the mail rows."""
    from app.configuration.operations import current_configuration
    from app.statistics.counters import compute_facts, fact_values
    from app.statistics.models import MailStatistics

    clerk = user_context("courrier")
    agent = user_context("sejour")
    pdf = _pdf()
    first = register_mail(clerk, _residence_request(uploads=[Upload(io.BytesIO(pdf), "lettre.pdf", kind="letter")]))
    picked = CorrespondentInput(id=first.correspondents[0].correspondent_id)
    mails = [
        first,
        register_mail(clerk, _residence_request(confidential=True, assignee_id=agent.user_id, correspondent=picked)),
        register_mail(agent, Registration(mail_type="internal_memo", subject="Note interne", handling_department="DMI-SSE")),
        register_mail(agent, Registration(mail_type="outgoing_reply", subject="Réponse à votre demande",
                                          handling_department="DMI-SSE-BPT", correspondent=picked)),
    ]
    ids = [mail.id for mail in mails]

    stored = {
        row.mail_id: row
        for row in db.session.execute(select(MailStatistics).where(MailStatistics.mail_id.in_(ids))).scalars()
    }
    read_back = compute_facts(db.session.connection(), ids, current_configuration())
    for mail_id in ids:
        expected = fact_values(read_back[mail_id])
        assert {name: getattr(stored[mail_id], name) for name in expected} == expected, mail_id
    assert read_back[ids[0]].attachments == 1
    assert read_back[ids[1]].assignee_id == agent.user_id
    assert read_back[ids[2]].acknowledgement is None
    assert read_back[ids[3]].acknowledgement is None


# --- Through the web form --------------------------------------------------------


def _form_data(page_html: str, **changes) -> dict:
    token = re.search(r'name="submission_token" type="hidden" value="([0-9a-f]*)"', page_html)
    data = {
        "csrf_token": csrf_token(page_html),
        "submission_token": token.group(1) if token else "",
        "subject": "Demande de premier titre de séjour",
        "arrival_date": (today_in_paris() - timedelta(days=2)).strftime("%d/%m/%Y"),
        "letter_date": "",
        "channel": "post",
        "priority": "normal",
        "handling_department": "",
        "assignee_id": "",
        "correspondent_id": "",
        "correspondent_kind": "person",
        "correspondent_first_name": "Rachid",
        "correspondent_last_name": "Œhmichen",
        "field_foreign_national_number": "0123456789",
        "field_permit_kind": "first_request",
    }
    data.update(changes)
    return data


def test_form_registers_and_redirects(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    pdf = _pdf()
    data = _form_data(page, attachments=[(io.BytesIO(pdf), "Arrêté n°2026-114 – préfet d’Île-de-France.pdf")])
    response = client.post("/mail/register/residence_permit_request", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="mail-chrono">PREF75/\d{4}/A/\d{6}<', detail)


@pytest.mark.parametrize(("chosen", "handled_by"), [("", "DMI-SSE-BRT"), ("DMI-SSE-BPT", "DMI-SSE-BPT")])
def test_form_department_left_to_the_rules_or_chosen(client_as, app, chosen, handled_by):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    assert 'name="handling_department"><option value="">— selon les règles d&#39;aiguillage —</option>' in page

    data = _form_data(page, handling_department=chosen, field_permit_kind="renewal")
    response = client.post("/mail/register/residence_permit_request", data=data)

    assert response.status_code == 302
    with app.app_context():
        mail = db.session.get(Mail, int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1]))
        assert mail.handling_department.code == handled_by


def test_form_without_default_department_starts_on_own(client_as, app):
    client = client_as("sejour")
    page = client.get("/mail/register/internal_memo").get_data(as_text=True)
    assert "selon les règles d&#39;aiguillage" not in page
    assert '<option selected value="DMI-SSE-BPT">' in page

    response = client.post("/mail/register/internal_memo", data={
        "csrf_token": csrf_token(page), "subject": "Note sur les rendez-vous du guichet", "channel": "internal",
        "priority": "normal", "handling_department": "DMI-SSE-BPT", "assignee_id": "", "correspondent_id": "",
        "correspondent_kind": "person",
    })

    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        mail = db.session.get(Mail, int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1]))
        assert mail.handling_department.code == "DMI-SSE-BPT"


def test_form_without_csrf_rejected(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page)
    del data["csrf_token"]
    response = client.post("/mail/register/residence_permit_request", data=data)
    assert response.status_code == 400
    with client.application.app_context():
        assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 0


def test_failed_submit_keeps_typed_date(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, arrival_date="03/02/2026", field_foreign_national_number="")
    response = client.post("/mail/register/residence_permit_request", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<input[^>]*name="arrival_date"[^>]*value="03/02/2026"', html)
    assert 'data-error-for="field_foreign_national_number"' in html


@pytest.mark.parametrize("typed", ["31/12/2026", "2026-12-31"])
def test_future_typed_dates_rejected_clearly(client_as, typed):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    html = client.post("/mail/register/residence_permit_request", data=_form_data(page, arrival_date=typed)).get_data(as_text=True)
    if date(2026, 12, 31) > today_in_paris():
        assert 'data-error-for="arrival_date"' in html
    assert f'value="{typed}"' in html


def test_invalid_typed_date_rejected(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    html = client.post("/mail/register/residence_permit_request", data=_form_data(page, arrival_date="31/02/2026")).get_data(as_text=True)
    assert 'data-error-for="arrival_date"' in html
    assert 'value="31/02/2026"' in html
    assert "La date 31/02/2026 n&#39;existe pas" in html


def test_amount_limit_written_in_french(app_context):
    assert "100 000 000,00" in _amount_errors("100 000 000,01").replace("\u202f", " ").replace("\u00a0", " ")


def test_invalid_date_shows_other_errors(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, arrival_date="31/02/2026", subject="", field_foreign_national_number="")
    html = client.post("/mail/register/residence_permit_request", data=data).get_data(as_text=True)

    assert 'data-error-for="arrival_date"' in html
    assert 'data-error-for="subject"' in html
    assert 'data-error-for="field_foreign_national_number"' in html


def test_failed_submit_names_files_to_choose_again(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, arrival_date="31/02/2026", attachments=[(io.BytesIO(_pdf()), "Lettre de Mme Lefèvre.pdf")])
    html = client.post("/mail/register/residence_permit_request", data=data, content_type="multipart/form-data").get_data(as_text=True)
    page_without_files = client.post("/mail/register/residence_permit_request", data=_form_data(page, arrival_date="31/02/2026")).get_data(as_text=True)

    assert 'id="files-to-choose-again"' in html
    assert "Lettre de Mme Lefèvre.pdf" in html
    assert 'id="files-to-choose-again"' not in page_without_files


def _post_with_valid_and_empty(client_as, valid_name: str, empty_name: str) -> tuple[str, str]:
    """Post a registration with a valid PDF and an empty file; return the page and its "choose again" warning."""
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, attachments=[(io.BytesIO(_pdf()), valid_name), (io.BytesIO(b""), empty_name)])
    html = client.post("/mail/register/residence_permit_request", data=data, content_type="multipart/form-data").get_data(as_text=True)
    again = html.split('id="files-to-choose-again"', 1)[1].split("</p>", 1)[0]
    return html, again


def test_refused_files_not_asked_again(client_as):
    html, again = _post_with_valid_and_empty(client_as, "Lettre de Mme Lefèvre.pdf", "vide.pdf")

    assert "Lettre de Mme Lefèvre.pdf" in again
    assert "vide.pdf" not in again
    assert "Le fichier vide.pdf est vide" in html


def test_refused_file_name_inside_valid_one(client_as):
    _html, again = _post_with_valid_and_empty(client_as, "lettre.pdf", "copie lettre.pdf")

    assert "lettre.pdf" in again
    assert "copie lettre.pdf" not in again


def test_refused_file_same_name_as_valid(client_as):
    _html, again = _post_with_valid_and_empty(client_as, "scan.pdf", "scan.pdf")

    assert "scan.pdf" in again


def test_email_registered_as_the_letter_called_an_email(client_as, app):
    message = (
        "From: =?utf-8?q?Association_des_Amis_du_Canal?= <contact@amis-du-canal.example>\r\n"
        "To: courrier@demo-prefecture.example\r\nSubject: =?iso-8859-1?q?Demande_de_subvention_=E9t=E9?=\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Madame, Monsieur, nous sollicitons une subvention pour l'=E9t=E9.\r\n"
    ).encode("ascii")
    with app.app_context():
        mail = register_mail(user_context("courrier"), _residence_request(uploads=[Upload(io.BytesIO(message), "demande.eml", kind="letter")]))
        mail_id = mail.id
    page = client_as("courrier").get(f"/mail/{mail_id}").get_data(as_text=True)

    assert "courriel reçu" in page
    assert "courrier numérisé" not in page


def test_script_in_subject_shown_as_text(client_as, app):
    with app.app_context():
        register_mail(user_context("courrier"), _residence_request(
            subject="<img src=x onerror=alert(document.domain)> Réclamation",
            correspondent=CorrespondentInput(last_name="<svg onload=alert(1)>", email="usager@example.org"),
        ))
    client = client_as("sejour")
    listing = client.get("/mail/basket/to_process").get_data(as_text=True)
    assert "<img src=x" not in listing
    assert "&lt;img src=x onerror=alert(document.domain)&gt; Réclamation" in listing
    mail_id = re.search(r'href="/mail/(\d+)"', listing).group(1)
    detail = client.get(f"/mail/{mail_id}").get_data(as_text=True)
    assert "<svg onload" not in detail
    assert "&lt;svg onload=alert(1)&gt;" in detail
    assert "<img src=x" not in detail


def test_download_keeps_accented_name(client_as, app):
    names = ["Arrêté n°2026-114 – préfet d’Île-de-France.pdf", "Рапорт.pdf"]
    with app.app_context():
        mail = register_mail(user_context("courrier"), _residence_request(
            uploads=[Upload(io.BytesIO(_pdf(name)), name) for name in names]))
        attachment_ids = [attachment.id for attachment in mail.attachments]
    client = client_as("sejour")
    first = client.get(f"/attachments/{attachment_ids[0]}/download")
    assert first.status_code == 200
    header = first.headers["Content-Disposition"]
    assert header.startswith("attachment; filename=")
    assert ("filename*=UTF-8''Arr%C3%AAt%C3%A9%20n%C2%B02026-114%20%E2%80%93%20pr%C3%A9fet%20d%E2%80%99%C3%8Ele-de-France.pdf") in header
    header.encode("latin-1")
    second = client.get(f"/attachments/{attachment_ids[1]}/download")
    assert "filename*=UTF-8''%D0%A0%D0%B0%D0%BF%D0%BE%D1%80%D1%82.pdf" in second.headers["Content-Disposition"]
    preview = client.get(f"/attachments/{attachment_ids[0]}/preview")
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert preview.mimetype == "application/pdf"


@pytest.mark.parametrize(("cut", "expected"), [(200, "incomplet"), (-10, "incomplet"), (0, "vide")])
def test_cut_short_pdf_rejected(app_context, cut, expected):
    content = _pdf()[:cut]
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), _residence_request(uploads=[Upload(io.BytesIO(content), "lettre.pdf")]))
    message = " ".join(failure.value.field_errors["attachments"])

    assert expected in message
    assert "lettre.pdf" in message
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 0


def test_bad_file_reported_with_other_errors(app_context):
    registration = _residence_request(subject="", uploads=[Upload(io.BytesIO(b""), "vide.pdf")])
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), registration)

    assert "subject" in failure.value.field_errors
    assert "vide" in " ".join(failure.value.field_errors["attachments"])


def test_form_reports_bad_file_with_invalid_date(client_as):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, arrival_date="31/02/2026", attachments=[(io.BytesIO(_pdf()[:200]), "tronque.pdf")])
    html = client.post("/mail/register/residence_permit_request", data=data, content_type="multipart/form-data").get_data(as_text=True)

    assert 'data-error-for="arrival_date"' in html
    assert "tronque.pdf n&#39;est pas un PDF lisible" in html


def _stored_files() -> list[Path]:
    store = content_store()
    return [path for folder in (store.objects_dir, store.tmp_dir) for path in folder.rglob("*") if path.is_file()]


def test_invalid_registration_stores_no_file(app_context):
    before = _stored_files()
    letter = _pdf("Demande jamais enregistrée")
    with pytest.raises(ValidationFailed):
        register_mail(user_context("courrier"), _residence_request(subject="", uploads=[Upload(io.BytesIO(letter), "lettre.pdf")]))

    assert _stored_files() == before


def test_every_bad_file_reported(app_context):
    files = [Upload(io.BytesIO(b""), "vide.pdf"), Upload(io.BytesIO(_pdf()[:200]), "tronque.pdf"),
             Upload(io.BytesIO(_pdf("Pièce valide")), "valide.pdf")]
    before = _stored_files()
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), _residence_request(uploads=files))
    messages = " ".join(failure.value.field_errors["attachments"])

    assert "vide.pdf" in messages
    assert "tronque.pdf" in messages
    assert "valide.pdf" not in messages
    assert _stored_files() == before


def test_invalid_date_form_checked_as_routed(client_as, app):
    with app.app_context():
        renewal_agent = user_context("renouvellement").user_id
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, letter_date="31/02/2026", field_permit_kind="renewal",
                      assignee_id=str(renewal_agent))
    html = client.post("/mail/register/residence_permit_request", data=data).get_data(as_text=True)

    assert 'data-error-for="letter_date"' in html
    assert 'data-error-for="assignee_id"' not in html


def test_pdf_with_damaged_index_accepted(app_context):
    content = _pdf().replace(b"startxref", b"startxrex")
    mail = register_mail(user_context("courrier"), _residence_request(uploads=[Upload(io.BytesIO(content), "scan.pdf")]))

    assert mail.attachments[0].content_type == "application/pdf"


def test_corrupted_file_not_served(client_as, app):
    with app.app_context():
        mail = register_mail(user_context("courrier"), _residence_request(uploads=[Upload(io.BytesIO(_pdf()), "a.pdf")]))
        attachment = mail.attachments[0]
        path = content_store().path_for(attachment.sha256)
        attachment_id = attachment.id
    path.chmod(0o600)
    path.write_bytes(b"%PDF-1.4 tampered")
    response = client_as("sejour").get(f"/attachments/{attachment_id}/download")
    assert response.status_code == 500
    assert b"tampered" not in response.get_data()


def test_correspondent_search_folds_accents(client_as, app):
    with app.app_context():
        register_mail(user_context("courrier"), _residence_request(correspondent=CorrespondentInput(
            kind="organisation", organisation="Sœurs de la Charité de Saint-Étienne")))
    client = client_as("courrier")
    for query in ("soeurs", "SŒUR", "saint etienne", "charite"):
        results = client.get("/api/correspondents/search", query_string={"q": query}).get_json()["results"]
        assert [item["display_name"] for item in results] == ["Sœurs de la Charité de Saint-Étienne"], query


def test_register_filter_keeps_french_dates(client_as, app):
    with app.app_context():
        clerk = user_context("courrier")
        for arrival in (date(2026, 2, 2), date(2026, 2, 3), date(2026, 2, 12), date(2026, 3, 2)):
            register_mail(clerk, _residence_request(arrival_date=arrival, correspondent=CorrespondentInput(
                last_name="Martin", confirm_new=True)))
    client = client_as("courrier")
    arguments = {"arrival_from": "03/02/2026", "arrival_to": "12/02/2026"}
    first = client.get("/mail/list", query_string=arguments).get_data(as_text=True)
    assert re.findall(r'class="arrival">([^<]+)<', first) == ["12/02/2026", "03/02/2026"]
    assert 'value="03/02/2026"' in first
    # The page link carries the typed text unchanged, so paging filters on the same dates.
    again = client.get("/mail/list", query_string={**arguments, "page": 1}).get_data(as_text=True)
    assert re.findall(r'class="arrival">([^<]+)<', again) == ["12/02/2026", "03/02/2026"]
    iso = client.get("/mail/list", query_string={"arrival_from": "2026-02-03", "arrival_to": "2026-02-12"}).get_data(as_text=True)
    assert re.findall(r'class="arrival">([^<]+)<', iso) == ["12/02/2026", "03/02/2026"]


def test_register_filters_status_department_and_exports(client_as, app):
    with app.app_context():
        clerk = user_context("courrier")
        residence = register_mail(clerk, _residence_request(
            subject="=HYPERLINK(\"http://x\") Demande", correspondent=CorrespondentInput(last_name="Martin", confirm_new=True)))
        residence_chrono = residence.chrono
        other = register_mail(clerk, _residence_request(
            subject="Demande du bureau voisin", handling_department="DMI-SSE-BRT",
            correspondent=CorrespondentInput(last_name="Martin", confirm_new=True)))
        other_id, other_chrono = other.id, other.chrono
        db.session.execute(update(Mail).where(Mail.id == other_id).values(status="in_progress"))
        db.session.commit()
    client = client_as("chef.sejour")

    by_department = client.get("/mail/list", query_string={"department": "DMI-SSE-BPT"}).get_data(as_text=True)
    by_status = client.get("/mail/list", query_string={"status": "in_progress"}).get_data(as_text=True)
    unknown = client.get("/mail/list", query_string={"department": "NOPE"}).get_data(as_text=True)
    export = client.get("/mail/list/export.csv", query_string={"department": "DMI-SSE"})

    assert residence_chrono in by_department
    assert other_chrono not in by_department
    assert other_chrono in by_status
    assert residence_chrono not in by_status
    assert 'data-error-for="department"' in unknown
    assert export.status_code == 200
    text = export.get_data().decode("utf-8-sig")
    assert text.splitlines()[0] == "N° chrono;Catégorie;Type;Objet;Arrivée;Date limite de traitement;Statut;Service;Attributaire"
    assert residence_chrono in text
    assert other_chrono in text
    # A subject starting with "=" is written as text, never as a spreadsheet formula.
    assert "'=HYPERLINK" in text


def test_register_export_shows_only_visible_mail(client_as, app):
    with app.app_context():
        hidden = register_mail(user_context("courrier"), _residence_request(
            confidential=True, correspondent=CorrespondentInput(last_name="Martin", confirm_new=True)))
        chrono = hidden.chrono

    text = client_as("subventions").get("/mail/list/export.csv").get_data().decode("utf-8-sig")

    assert chrono not in text


def test_register_export_over_limit_refused(client_as, app, monkeypatch):
    from app.mail import views

    with app.app_context():
        for _ in range(2):
            register_mail(user_context("courrier"), _residence_request(
                correspondent=CorrespondentInput(last_name="Martin", confirm_new=True)))
    monkeypatch.setattr(views, "REGISTER_EXPORT_MAX_ROWS", 1)
    client = client_as("chef.sejour")

    response = client.get("/mail/list/export.csv", query_string={"category": "incoming"})
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.status_code == 302
    assert "category=incoming" in response.headers["Location"]
    assert "L&#39;export est limité à 1 courriers" in page


def test_register_filter_rejects_bad_date(client_as):
    html = client_as("courrier").get("/mail/list", query_string={"arrival_from": "31/02/2026"}).get_data(as_text=True)
    assert 'data-error-for="arrival_from"' in html
    assert 'value="31/02/2026"' in html


def test_register_list_pages_keep_filters(app, client_as):
    with app.app_context():
        agent = user_context("sejour")
        size = app.config["BASKET_PAGE_SIZE"]
        for index in range(size + 1):
            register_mail(agent, Registration(
                mail_type="internal_memo", subject=f"Note {index}", handling_department="DMI-SSE-BPT",
            ))
    client = client_as("sejour")

    first = client.get("/mail/list?mail_type=internal_memo").get_data(as_text=True)
    second = client.get("/mail/list?mail_type=internal_memo&page=2").get_data(as_text=True)

    assert 'rel="next"' in first
    assert "page=2" in first
    assert "mail_type=internal_memo" in first
    assert 'rel="prev"' not in first
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
    assert f'id="register-total">{size + 1}<' in first


def test_english_due_date_day_first(client_as, app):
    with app.app_context():
        mail = register_mail(user_context("courrier"), _residence_request())
        mail_id, due = mail.id, mail.due_date
    client = client_as("sejour")
    client.get("/lang/en")
    page = client.get(f"/mail/{mail_id}").get_data(as_text=True)
    month = due.strftime("%B")

    assert f"{due.day} {month} {due.year}" in page
    assert f"{month} {due.day}, {due.year}" not in page


def test_duplicate_candidates_told_apart(client_as, app):
    with app.app_context():
        for city in ("Paris", "Saint-Denis"):
            db.session.add(Correspondent(kind="organisation", organisation="Association Les Amis de l'Église Saint-Éloi",
                                         city=city, postcode="75011" if city == "Paris" else "93200",
                                         name_key="association les amis de l eglise saint eloi"))
        db.session.commit()
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, correspondent_kind="organisation", correspondent_first_name="", correspondent_last_name="",
                      correspondent_organisation="Association les amis de l'eglise Saint-Eloi")
    html = client.post("/mail/register/residence_permit_request", data=data).get_data(as_text=True)
    candidates = html[html.index('id="duplicate-candidates"'):]

    assert "75011 Paris" in candidates
    assert "93200 Saint-Denis" in candidates
    assert "entrée ajoutée le" in candidates


def test_duplicate_prompt_comes_with_other_errors(client_as, app):
    with app.app_context():
        db.session.add(Correspondent(last_name="Thomas", first_name="Bruno", email="bruno.thomas@example.org",
                                     name_key="bruno thomas", email_key="bruno.thomas@example.org"))
        db.session.commit()
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, subject="", correspondent_first_name="BRUNO", correspondent_last_name="THOMAS",
                      correspondent_email="Bruno.Thomas@example.org")
    html = client.post("/mail/register/residence_permit_request", data=data).get_data(as_text=True)

    assert 'data-error-for="subject"' in html
    assert 'id="duplicate-candidates"' in html
    assert "probablement déjà dans l" in html
    # The same message serves organisations: it names no person.
    assert "s&#39;agit d&#39;un autre correspondant" in html


def test_failed_submit_shows_picked_correspondent(client_as, app):
    with app.app_context():
        picked = resolve_correspondent_id(
            CorrespondentInput(last_name="Lefèvre-Dûpont", first_name="Éloïse", civility="Mme"), None, utcnow()
        )
        db.session.commit()
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, correspondent_id=str(picked), field_foreign_national_number="12")

    html = client.post("/mail/register/residence_permit_request", data=data).get_data(as_text=True)

    assert '<span class="picked-name">Mme Éloïse Lefèvre-Dûpont</span>' in html
    assert re.search(r'<p id="correspondent-picked" class="alert alert-info" >', html)
    assert '<div id="correspondent-new" hidden>' in html


@pytest.mark.parametrize("field", ["correspondent_id", "assignee_id"])
@pytest.mark.parametrize("value", ["99999999999999999999999", "2147483648", "²"])
def test_form_id_out_of_range_is_ignored(client_as, field, value):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page, **{field: value})

    response = client.post("/mail/register/residence_permit_request", data=data)

    assert response.status_code in (200, 302)


def test_form_sent_twice_registers_once(client_as, app):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    data = _form_data(page)
    assert re.fullmatch(r"[0-9a-f]{32}", data["submission_token"])

    first = client.post("/mail/register/residence_permit_request", data=dict(data))
    second = client.post("/mail/register/residence_permit_request", data=dict(data), follow_redirects=True)

    assert first.status_code == 302
    assert second.request.path == first.headers["Location"]
    assert "déjà été envoyé" in second.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 1


def test_outgoing_form_speaks_of_sending(client_as):
    outgoing = client_as("sejour").get("/mail/register/outgoing_reply").get_data(as_text=True)
    incoming = client_as("courrier").get("/mail/register/residence_permit_request").get_data(as_text=True)

    assert """<label class="control-label" for="arrival_date">Date d'envoi<""" in outgoing
    assert "Courrier postal (numérisé)" not in outgoing
    assert """<label class="control-label" for="arrival_date">Date d'arrivée<""" in incoming
    assert "Courrier postal (numérisé)" in incoming


def test_reused_page_with_other_values_registers_nothing(client_as, app):
    client = client_as("courrier")
    page = client.get("/mail/register/residence_permit_request").get_data(as_text=True)
    first = client.post("/mail/register/residence_permit_request", data=_form_data(page))
    assert first.status_code == 302

    # Back to the form kept by the browser, typed again for another letter.
    other = _form_data(page, subject="Demande de renouvellement", correspondent_last_name="Lefèvre-Dûpont")
    response = client.post("/mail/register/residence_permit_request", data=other)
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "ses valeurs ont changé depuis : rien n&#39;a été enregistré" in html
    assert "Demande de renouvellement" in html
    new_token = re.search(r'name="submission_token" type="hidden" value="([0-9a-f]{32})"', html).group(1)
    assert new_token != other["submission_token"]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 1
    again = client.post("/mail/register/residence_permit_request", data={**other, "submission_token": new_token})
    assert again.status_code == 302


def test_other_users_token_reveals_nothing(app_context):
    token = "ab" * 16
    registration = _residence_request(submission_token=token, confidential=True,
                                      assignee_id=user_context("sejour").user_id)
    register_mail(user_context("courrier"), registration)
    other = _residence_request(submission_token=token, subject="Autre demande")

    with pytest.raises(SubmissionReused) as reused:
        register_mail(user_context("chef.sejour"), other)

    assert reused.value.mail is None
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 1


def test_outgoing_future_date_is_a_sending_date(app_context):
    reply = Registration(mail_type="outgoing_reply", subject="Réponse à votre demande", handling_department="DMI-SSE-BPT",
                         arrival_date=today_in_paris() + timedelta(days=3), correspondent=CorrespondentInput(last_name="Martin"))

    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("sejour"), reply)

    assert failure.value.field_errors["arrival_date"] == ["La date d'envoi ne peut pas être postérieure à la date du jour."]


def test_outgoing_post_shown_unscanned(client_as, app):
    with app.app_context():
        reply = register_mail(user_context("sejour"), Registration(
            mail_type="outgoing_reply", subject="Réponse à votre demande", handling_department="DMI-SSE-BPT",
            channel="post", correspondent=CorrespondentInput(last_name="Martin"),
        )).id

    html = client_as("sejour").get(f"/mail/{reply}").get_data(as_text=True)

    assert '<tr data-field="channel"><th>Canal</th><td>Courrier postal</td></tr>' in html
