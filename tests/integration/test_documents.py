"""Documents: templates, reply drafts and their versions, acknowledgements of receipt and their sending."""

from __future__ import annotations

import io
import subprocess
import zipfile
from datetime import UTC, date, datetime
from typing import Any

import docx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.configuration.operations import current_configuration
from app.core.errors import NotFound, ValidationFailed
from app.correspondents.operations import CorrespondentInput
from app.deadlines.legal import add_months
from app.documents.acknowledgements import (
    MENTIONS,
    AcknowledgementIncomplete,
    generate_acknowledgement,
    print_pending,
    send_acknowledgement,
)
from app.documents.context import senders_of
from app.documents.models import Document, DocumentVersion, TemplateFile
from app.documents.operations import (
    add_version,
    generate_reply,
    upload_version,
    version_docx_bytes,
    version_pdf_bytes,
)
from app.documents.rendering import document_text
from app.documents.template_files import upload_template_file
from app.extensions import db
from app.mail.baskets import basket_page
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail
from app.notifications.mail import SmtpBackend, deliver_pending
from app.organisation.models import Department
from tests.conftest import csrf_token, user_context
from tests.docx_samples import split_placeholder_template
from tests.integration.document_support import SOFFICE, needs_soffice
from tests.integration.loopback_smtp import LoopbackSmtpServer


def _grant_request(arrival: date, *, email: str | None = None, address: str | None = "3 place du Marché",
                   subject: str = "Demande de subvention pour la fête du quartier") -> Mail:
    return register_mail(
        user_context("courrier"),
        Registration(
            mail_type="grant_request", subject=subject, arrival_date=arrival,
            fields={"amount_requested": "1500"},
            correspondent=CorrespondentInput(
                kind="organisation", civility="Madame", first_name="Odile", last_name="Perrin-Vasseur",
                organisation="Comité des fêtes", email=email, address=address, postcode="75015", city="Paris",
                confirm_new=True,
            ),
        ),
    )


def _pdf_text(pdf: bytes) -> str:
    completed = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return completed.stdout.decode("utf-8")


def _paragraph_runs(document: Any, text: str) -> list[Any]:
    for paragraph in document.paragraphs:
        if text in paragraph.text:
            return list(paragraph.runs)
    raise AssertionError(f"no paragraph contains {text!r}")


# --- Templates --------------------------------------------------------------------


def test_split_placeholders_all_filled(app_context, restore_templates):
    template = split_placeholder_template()
    upload_template_file(user_context("admin"), "reply_standard", "fr", io.BytesIO(template), "éclaté.docx")
    mail = _grant_request(date(2026, 11, 20))

    produced = generate_reply(user_context("subventions"), mail.id, "reply_standard", "fr")

    data = version_docx_bytes(produced.version)
    assert data is not None
    texts = document_text(data)
    assert not any("{{" in text or "}}" in text for text in texts)
    reread = docx.Document(io.BytesIO(data))
    body_runs = _paragraph_runs(reread, mail.chrono)
    assert [run.text for run in body_runs] == ["Réf. ", mail.chrono, " — suite"]
    assert body_runs[0].italic is True
    assert body_runs[1].bold is True
    assert body_runs[2].italic is True
    header_text = reread.sections[0].header.paragraphs[0].text
    assert header_text == "Bureau des subventions et des dotations"
    assert reread.sections[0].header.paragraphs[0].runs[0].bold is True
    assert reread.sections[0].footer.paragraphs[0].text == f"Dossier {mail.chrono}"
    row = reread.tables[0].rows[0]
    assert row.cells[0].text == "Odile Perrin-Vasseur"
    assert row.cells[0].paragraphs[0].runs[0].italic is True
    assert row.cells[1].text == "20 novembre 2026"
    box_texts = [node.text for node in reread.element.body.iter(docx.oxml.ns.qn("w:t"))]
    assert "01 49 00 00 51" in box_texts

    if SOFFICE is not None:
        pdf = version_pdf_bytes(produced.version)
        assert pdf is not None, produced.pdf_problem
        text = _pdf_text(pdf)
        for expected in (mail.chrono, "Bureau des subventions et des dotations", "Odile Perrin-Vasseur",
                         "20 novembre 2026", "01 49 00 00 51"):
            assert expected in text


def test_template_upload_rejects_unknown_field(app_context, restore_templates, client_as):
    bad = split_placeholder_template(extra_body=["Dossier {{ numero_dossier }}"])
    with pytest.raises(ValidationFailed) as raised:
        upload_template_file(user_context("admin"), "reply_standard", "fr", io.BytesIO(bad), "mauvais.docx")
    assert "numero_dossier" in raised.value.message

    client = client_as("admin")
    page = client.get("/documents/templates")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-field="implicit_decision_date"' in html
    assert "<code>&#123;&#123; name &#125;&#125;</code>" in html
    response = client.post(
        "/documents/templates/reply_standard/fr",
        data={"csrf_token": csrf_token(html), "file": (io.BytesIO(bad), "mauvais.docx")},
        content_type="multipart/form-data", follow_redirects=True,
    )
    assert "numero_dossier" in response.get_data(as_text=True)
    uploads = db.session.execute(select(TemplateFile).where(TemplateFile.source == "upload")).scalars().all()
    assert uploads == []


def test_acknowledgement_template_needs_mentions(app_context, restore_templates):
    without_phone = split_placeholder_template()
    with pytest.raises(ValidationFailed) as raised:
        upload_template_file(user_context("admin"), "acknowledgement_standard", "fr", io.BytesIO(without_phone),
                             "ar.docx")
    assert "department_address" in raised.value.message or "implicit_decision_date" in raised.value.message


def test_template_upload_needs_administrator(client_as):
    client = client_as("subventions")
    assert client.get("/documents/templates").status_code == 403


def test_print_page_counts_pending(app, client_as):
    with app.app_context():
        by_post = _grant_request(date(2026, 11, 20)).id
        by_email = _grant_request(date(2026, 11, 20), email="comite@example.org").id
        db.session.remove()
    page = client_as("subventions").get("/documents/acknowledgements/print").get_data(as_text=True)
    assert '<strong id="pending-count">1</strong>' in page
    # The page lists the mails it prints for.
    assert f'<tr data-mail="{by_post}">' in page
    assert f'data-mail="{by_email}"' not in page
    assert "Comité des fêtes" in page
    assert client_as("courrier").get("/documents/acknowledgements/print").status_code == 403


# --- Escaping ---------------------------------------------------------------------


def test_special_characters_kept_as_text(app_context, restore_templates):
    subject = 'Fête « A & B » <urgent> "citée" l\'été'
    mail = _grant_request(date(2026, 11, 20), subject=subject, address="12 rue des Lilas\nBâtiment <C> & D")

    produced = generate_reply(user_context("subventions"), mail.id, "reply_standard", "fr")

    data = version_docx_bytes(produced.version)
    assert data is not None
    reread = docx.Document(io.BytesIO(data))
    full_text = "\n".join(paragraph.text for paragraph in reread.paragraphs)
    assert subject in full_text
    cells = "\n".join(cell.text for table in reread.tables for row in table.rows for cell in row.cells)
    assert subject in cells
    address_paragraph = next(p for p in reread.paragraphs if "12 rue des Lilas" in p.text)
    assert "12 rue des Lilas\nBâtiment <C> & D" in address_paragraph.text
    assert address_paragraph._p.xml.count("<w:br/>") >= 3
    if SOFFICE is not None:
        text = _pdf_text(version_pdf_bytes(produced.version) or b"")
        assert "Bâtiment <C> & D" in text
        assert "<urgent>" in text


# --- Reply drafts and versions ------------------------------------------------------


@pytest.mark.parametrize(("civility", "form"), [("Mme", "Madame"), ("M.", "Monsieur"), ("Me", "Maître"), ("", "Madame, Monsieur")])
def test_reply_addresses_its_recipient_in_words(app_context, civility, form):
    mail = register_mail(user_context("courrier"), Registration(
        mail_type="grant_request", subject="Demande de subvention", arrival_date=date(2026, 11, 20),
        fields={"amount_requested": "1500"},
        correspondent=CorrespondentInput(kind="person", civility=civility, first_name="Odile",
                                         last_name="Perrin-Vasseur", confirm_new=True),
    ))
    produced = generate_reply(user_context("subventions"), mail.id, "reply_standard", "fr")
    text = "\n".join(document_text(version_docx_bytes(produced.version) or b""))

    assert f"\n{form},\n" in f"\n{text}\n"
    assert f"Je vous prie d'agréer, {form}, l'expression" in text
    assert "Votre demande reçue le 20 novembre 2026" in text
    # The drafting agent is named as the one handling the case, never as the signatory.
    agent = user_context("subventions").display_name
    assert text.count(agent) == 1
    assert f"Affaire suivie par : {agent}" in text
    assert "\nPour le préfet et par délégation,\n" in f"\n{text}\n"


def test_reply_versions_and_history(app_context, restore_templates):
    mail = _grant_request(date(2026, 11, 20))
    agent = user_context("subventions")
    produced = generate_reply(agent, mail.id, "reply_standard", "en")
    edited = docx.Document(io.BytesIO(version_docx_bytes(produced.version) or b""))
    edited.add_paragraph("Paragraphe ajouté par l'agent.")
    buffer = io.BytesIO()
    edited.save(buffer)

    second = upload_version(agent, produced.document.id, io.BytesIO(buffer.getvalue()), "réponse v2.docx", "relue")
    third = add_version(agent, produced.document.id, pdf=b"%PDF-1.4\n%%EOF\n", convert=False, note="PDF")

    assert (second.version.number, third.version.number) == (2, 3)
    assert third.version.docx_sha256 is None
    assert "Paragraphe ajouté par l'agent." in "\n".join(document_text(version_docx_bytes(second.version) or b""))
    english = "\n".join(document_text(version_docx_bytes(produced.version) or b""))
    assert "20 November 2026" in english
    events = [entry.event for entry in db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail.id).order_by(HistoryEntry.id)
    ).scalars()]
    assert events.count("document_generated") == 1
    assert events.count("document_version_added") == 2
    with pytest.raises(ValidationFailed):
        upload_version(agent, produced.document.id, io.BytesIO(b"MZ not a document"), "virus.docx")
    with pytest.raises(ValidationFailed) as empty:
        upload_version(agent, produced.document.id, io.BytesIO(b""), "vide.pdf")
    assert empty.value.field_errors["file"] == ["Le fichier vide.pdf est vide : choisissez-le de nouveau."]


def test_closed_mail_documents_unchanged(app_context, restore_templates, client_as):
    from app.actions.operations import ActionInput, perform_action
    from app.documents.operations import DocumentError

    mail = _grant_request(date(2026, 11, 20))
    agent = user_context("subventions")
    produced = generate_reply(agent, mail.id, "reply_standard", "fr")
    docx_bytes = version_docx_bytes(produced.version) or b""
    perform_action(agent, mail.id, "close", ActionInput(fields={"association_siret": "12345678200010"}))

    with pytest.raises(DocumentError) as upload:
        upload_version(agent, produced.document.id, io.BytesIO(docx_bytes), "réponse v2.docx")
    with pytest.raises(DocumentError):
        generate_reply(agent, mail.id, "reply_standard", "fr")
    page = client_as("subventions").get(f"/mail/{mail.id}").get_data(as_text=True)

    assert "rouvrez-le" in upload.value.message
    assert [version.number for version in produced.document.versions] == [1]
    assert 'id="documents-closed"' in page
    assert "upload-version" not in page


def test_signed_document_takes_no_new_version(app_context, restore_templates):
    from app.documents.operations import DocumentError

    mail = _grant_request(date(2026, 11, 20))
    agent = user_context("subventions")
    produced = generate_reply(agent, mail.id, "reply_standard", "fr")
    db.session.get(Document, produced.document.id).state = "signed"
    db.session.commit()

    with pytest.raises(DocumentError) as refused:
        upload_version(agent, produced.document.id, io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "réponse.pdf")

    assert "signée" in refused.value.message or "signé" in refused.value.message


def test_version_upload_refuses_docx_bomb(app_context, restore_templates):
    mail = _grant_request(date(2026, 11, 20))
    agent = user_context("subventions")
    produced = generate_reply(agent, mail.id, "reply_standard", "fr")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as stream:
            for _ in range(40):
                stream.write(b"A" * (1024 * 1024))

    with pytest.raises(ValidationFailed) as refused:
        upload_version(agent, produced.document.id, io.BytesIO(buffer.getvalue()), "bombe.docx")

    assert "bombe.docx" in refused.value.field_errors["file"][0]
    assert "trop volumineux une fois décompressé" in refused.value.field_errors["file"][0]
    assert [version.number for version in produced.document.versions] == [1]


def test_other_department_cannot_reach_documents(app, client_as):
    # Requests push their own application context, so the data is made in a context of its own.
    with app.app_context():
        mail = _grant_request(date(2026, 11, 20))
        produced = generate_reply(user_context("subventions"), mail.id, "reply_standard", "fr")
        mail_id, version_id = mail.id, produced.version.id
        with pytest.raises(NotFound):
            generate_reply(user_context("renouvellement"), mail_id, "reply_standard", "fr")
        db.session.remove()

    outsider = client_as("renouvellement")
    owner = client_as("subventions")
    token = csrf_token(outsider.get("/absences/").get_data(as_text=True))
    refused = outsider.post(f"/documents/mail/{mail_id}/reply", data={"csrf_token": token, "template_id": "reply_standard"})
    assert refused.status_code == 404
    assert outsider.get(f"/documents/versions/{version_id}/docx").status_code == 404
    assert outsider.get(f"/mail/{mail_id}").status_code == 404
    with app.app_context():
        document_id = db.session.get(DocumentVersion, version_id).document_id
    # A new version posted without its file: the check of the file must not reveal the mail's page.
    for path in (f"/documents/{document_id}/versions", f"/documents/{document_id}/send"):
        posted = outsider.post(path, data={"csrf_token": token})
        assert posted.status_code == 404, path
        assert f"/mail/{mail_id}" not in posted.headers.get("Location", ""), path
    with app.app_context():
        db.session.get(Document, document_id).title = "Réponse n° 2026/14 <b>"
        db.session.commit()
    response = owner.get(f"/documents/versions/{version_id}/docx")
    assert response.status_code == 200
    assert response.data.startswith(b"PK")
    disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''R%C3%A9ponse%20n%C2%B0%202026-14%20%3Cb%3E%20-%20" in disposition
    page = owner.get(f"/mail/{mail_id}").get_data(as_text=True)
    assert 'id="documents"' in page
    assert f"/documents/versions/{version_id}/docx" in page


# --- Acknowledgements of receipt ------------------------------------------------------


def test_acknowledgement_friday_before_holiday(app_context, restore_templates):
    # Friday 3 April 2026; Monday 6 April 2026 is Easter Monday, a public holiday.
    arrival = date(2026, 4, 3)
    assert arrival.weekday() == 4
    mail = _grant_request(arrival)
    # Silence means acceptance after two months (CRPA L231-1), counted from receipt (CPC article 641):
    # the same day number two months later, never moved for weekends or holidays.
    expected = date(2026, 6, 3)
    assert add_months(arrival, 2) == expected
    sender = senders_of(mail)[0]

    produced = generate_acknowledgement(user_context("subventions"), mail.id, sender.id, "fr",
                                        now=datetime(2026, 4, 7, 9, 0, tzinfo=UTC))

    text = "\n".join(document_text(version_docx_bytes(produced.version) or b""))
    assert "votre demande fera l'objet d'une décision implicite (silence vaut acceptation)" in text
    assert "3 juin 2026" in text
    assert "3 avril 2026" in text
    assert "silence vaut acceptation" in text
    assert "recours" not in text.lower().replace("délivré en application", "")
    assert "01 49 00 00 51" in text
    assert "subventions@demo-prefecture.gouv.fr" in text
    assert "5 rue Leblanc, 75015 Paris" in text


def test_late_acknowledgement_says_decision_arose(app_context, restore_templates):
    mail = _grant_request(date(2026, 4, 3))
    sender = senders_of(mail)[0]

    produced = generate_acknowledgement(user_context("subventions"), mail.id, sender.id, "fr",
                                        now=datetime(2026, 12, 7, 9, 0, tzinfo=UTC))

    text = "\n".join(document_text(version_docx_bytes(produced.version) or b""))
    # Made in December, the AR states that the decision of June has arisen, not that it will.
    assert "votre demande a fait l'objet d'une décision implicite (silence vaut acceptation) le 3 juin 2026" in text
    assert "fera l'objet" not in text


def test_acknowledgement_rejection_has_appeal_routes(app_context, restore_templates):
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="administrative_document_request", subject="Communication d'un arrêté",
            arrival_date=date(2026, 11, 2), fields={"document_requested": "Arrêté n° 2026-114"},
            correspondent=CorrespondentInput(last_name="Martin", first_name="Paul", confirm_new=True),
        ),
    )
    sender = senders_of(mail)[0]
    produced = generate_acknowledgement(user_context("legalite"), mail.id, sender.id, "en")
    text = "\n".join(document_text(version_docx_bytes(produced.version) or b""))
    assert "silence means rejection" in text
    assert "2 December 2026" in text
    assert "administrative court" in text


def test_acknowledgement_refused_without_phone(app_context, restore_templates):
    department = db.session.execute(select(Department).where(Department.code == "DCPPAT-BSUB")).scalar_one()
    phone = department.phone
    mail = _grant_request(date(2026, 11, 20))
    sender = senders_of(mail)[0]
    department.phone = None
    db.session.commit()
    try:
        with pytest.raises(AcknowledgementIncomplete) as raised:
            generate_acknowledgement(user_context("subventions"), mail.id, sender.id, "fr")
    finally:
        db.session.rollback()
        department = db.session.execute(select(Department).where(Department.code == "DCPPAT-BSUB")).scalar_one()
        department.phone = phone
        db.session.commit()
    assert raised.value.mention == "department_phone"
    assert str(MENTIONS["department_phone"]) in raised.value.message
    assert "DCPPAT-BSUB" in raised.value.message
    count = db.session.execute(select(Document).where(Document.mail_id == mail.id)).scalars().all()
    assert count == []


def test_acknowledgement_sent_by_email(app_context, restore_templates):
    mail = _grant_request(date(2026, 11, 20), email="odile.perrin@example.org")
    sender = senders_of(mail)[0]
    agent = user_context("subventions")
    produced = generate_acknowledgement(agent, mail.id, sender.id, "fr")

    sent = send_acknowledgement(agent, produced.document.id)

    assert sent.channel == "email"
    server = LoopbackSmtpServer()
    server.start()
    try:
        summary = deliver_pending(backend=SmtpBackend("127.0.0.1", server.port, "none", "", "", timeout=5))
    finally:
        server.stop()
    # Notifications to the agents go out in the same pass.
    assert summary.sent >= 1
    to_sender = [message for message in server.messages if message["To"] == "odile.perrin@example.org"]
    assert len(to_sender) == 1
    message = to_sender[0]
    assert mail.chrono in message["Subject"]
    # The sender's reply goes to the handling department, not to the portal's sending address.
    assert message["Reply-To"] == mail.handling_department.email
    assert message["Reply-To"]
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    payload = attachments[0].get_content()
    if SOFFICE is not None:
        assert attachments[0].get_content_type() == "application/pdf"
        assert "silence vaut acceptation" in _pdf_text(payload)
    else:
        assert payload.startswith(b"PK")
    document = db.session.get(Document, produced.document.id)
    assert (document.state, document.sending_channel) == ("sent", "email")
    assert document.sent_at is not None
    history = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail.id, HistoryEntry.event == "acknowledgement_sent")
    ).scalar_one()
    assert history.details["channel"] == "email"


@needs_soffice
def test_print_pending_marks_all_sent(app_context, restore_templates):
    configuration = current_configuration()
    assert configuration.baskets["acknowledgements_to_send"].acknowledgement == "pending"
    agent = user_context("subventions")
    first = _grant_request(date(2026, 11, 18))
    second = _grant_request(date(2026, 11, 19), address=None)
    with_email = _grant_request(date(2026, 11, 20), email="comite@example.org")
    generate_acknowledgement(agent, first.id, senders_of(first)[0].id, "fr")
    pending_before = {mail.id for mail in basket_page(agent, configuration, "acknowledgements_to_send", 1, 50).items}
    assert {first.id, second.id, with_email.id} <= pending_before

    batch = print_pending(agent, "fr")

    assert batch.failed == []
    assert sorted(chrono for chrono, _name in batch.printed) == sorted([first.chrono, second.chrono])
    pages = PdfReader(io.BytesIO(batch.pdf or b"")).pages
    assert len(pages) >= 2
    merged_text = _pdf_text(batch.pdf or b"")
    assert first.chrono in merged_text
    assert second.chrono in merged_text
    for mail in (first, second):
        document = db.session.execute(select(Document).where(Document.mail_id == mail.id)).scalar_one()
        assert (document.state, document.sending_channel) == ("sent", "print")
        assert document.sent_at is not None
    pending_after = {mail.id for mail in basket_page(agent, configuration, "acknowledgements_to_send", 1, 50).items}
    sent_after = {mail.id for mail in basket_page(agent, configuration, "acknowledgements_sent", 1, 50).items}
    assert first.id not in pending_after
    assert second.id not in pending_after
    assert with_email.id in pending_after
    assert {first.id, second.id} <= sent_after
    assert print_pending(agent, "fr").pdf is None
