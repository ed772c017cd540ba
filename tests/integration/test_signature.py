"""The signature book: circuits, decisions, the frozen document, delegation, the basket and signatures."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.absences.models import Absence
from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.configuration.operations import current_configuration
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.correspondents.operations import CorrespondentInput
from app.distribution.models import CIRCUIT, DistributionEntry
from app.documents.models import Document, DocumentVersion
from app.extensions import db
from app.mail.baskets import basket_page
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.mail.visibility import can_see
from app.notifications.models import Notification
from app.signature.events import document_changed
from app.signature.models import SignatureCircuit
from app.signature.operations import (
    CircuitMovedOn,
    CircuitRefused,
    Decision,
    FrozenDocumentChanged,
    StepInput,
    approve,
    interrupt,
    reject,
    resubmit,
    sign,
    start_circuit,
    waiting_for,
)
from tests.conftest import csrf_token, user_context

# --- Helpers shared with the browser journey ------------------------------------------


def make_pdf(text: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    drawing = canvas.Canvas(buffer, pagesize=A4)
    drawing.drawString(72, 760, text)
    drawing.showPage()
    drawing.save()
    return buffer.getvalue()


def register_residence_request(subject: str = "Demande de titre de séjour") -> int:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="residence_permit_request", subject=subject,
            arrival_date=today_in_paris() - timedelta(days=1),
            fields={"foreign_national_number": "0123456789", "permit_kind": "first_request", "nationality": "Malienne"},
            correspondent=CorrespondentInput(last_name="Traoré", first_name="Aïssata", confirm_new=True),
        ),
    )
    return mail.id


def add_version(document_id: int, text: str, author: str = "sejour") -> DocumentVersion:
    """Store a PDF and add it as the document's next version, as the documents area does."""
    blob = content_store().put_bytes(make_pdf(text))
    versions = db.session.execute(
        select(DocumentVersion).where(DocumentVersion.document_id == document_id)
    ).scalars().all()
    version = DocumentVersion(
        document_id=document_id, number=len(versions) + 1, pdf_sha256=blob.sha256, pdf_size=blob.size,
        signed=False, created_by_id=user_context(author).user_id,
    )
    db.session.add(version)
    db.session.commit()
    return version


def add_reply(mail_id: int, title: str = "Réponse à la demande de titre de séjour") -> int:
    document = Document(mail_id=mail_id, kind="reply", state="draft", title=title, language="fr",
                        created_by_id=user_context("sejour").user_id)
    db.session.add(document)
    db.session.commit()
    add_version(document.id, "Madame, votre demande est acceptée.")
    return document.id


def ids(*usernames: str) -> list[int]:
    return [user_context(name).user_id for name in usernames]


def three_steps() -> list[StepInput]:
    """Two approvers one after the other, then one signatory."""
    return [StepInput("approval", ids("chef.sejour")), StepInput("approval", ids("legalite")),
            StepInput("signature", ids("secretaire.general"))]


@dataclass
class SigningCertificate:
    pkcs12_path: Path
    password: str
    ca_der: bytes


def make_test_certificate(directory: Path) -> SigningCertificate:
    """Write a PKCS#12 file holding a signer certificate issued by a self-signed test CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder().subject_name(name("Estafette Test CA")).issuer_name(name("Estafette Test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder().subject_name(name("Préfecture de démonstration")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        ), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    password = "test-only-password"
    path = directory / "signer.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", key, certificate, [ca], serialization.BestAvailableEncryption(password.encode()),
    ))
    return SigningCertificate(path, password, ca.public_bytes(serialization.Encoding.DER))


def validate_pades(pdf: bytes, ca_der: bytes) -> Any:
    """Return pyHanko's status of the last signature of ``pdf``, with the test CA as the only trust root."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf))
    assert reader.embedded_signatures, "the PDF holds no signature"
    context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(ca_der)], allow_fetching=False)
    # pyHanko's synchronous API starts an asyncio loop, which fails inside Playwright's own loop:
    # a worker thread has none.
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(validate_pdf_signature, reader.embedded_signatures[-1], context).result()


# --- Helpers of this file ----------------------------------------------------------


def _start(mail_id: int, document_id: int, steps: list[StepInput] | None = None) -> SignatureCircuit:
    return start_circuit(user_context("sejour"), mail_id, document_id, steps=steps or three_steps())


def _decision(circuit_id: int, comment: str | None = None) -> Decision:
    circuit = db.session.get(SignatureCircuit, circuit_id, populate_existing=True)
    return Decision(comment=comment, expected_round=circuit.round, expected_step=circuit.current_step)


def _events(mail_id: int) -> list[str]:
    return list(db.session.execute(
        select(HistoryEntry.event).where(HistoryEntry.mail_id == mail_id).order_by(HistoryEntry.id)
    ).scalars())


def _circuit(circuit_id: int) -> SignatureCircuit:
    return db.session.get(SignatureCircuit, circuit_id, populate_existing=True)


def _basket_chronos(username: str) -> set[str]:
    page = basket_page(user_context(username), current_configuration(), "signature_book", 1, 100)
    return {mail.chrono for mail in page.items}


# --- Tests ---------------------------------------------------------------------------


def test_three_step_circuit_signs(app_context, tmp_path):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    assert db.session.get(Mail, mail_id).status == "in_signature_book"
    assert db.session.get(Document, document_id).state == "in_circuit"

    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    approve(user_context("legalite"), circuit.id, _decision(circuit.id))
    signed = sign(user_context("secretaire.general"), circuit.id, _decision(circuit.id))

    assert signed.state == "signed"
    mail = db.session.get(Mail, mail_id, populate_existing=True)
    assert mail.status == "to_send"
    document = db.session.get(Document, document_id, populate_existing=True)
    assert document.state == "signed"
    last = document.versions[-1]
    assert (last.number, last.signed) == (2, True)
    attachment = db.session.execute(select(Attachment).where(Attachment.mail_id == mail_id, Attachment.kind == "signed")).scalar_one()
    assert attachment.sha256 == last.pdf_sha256
    assert _events(mail_id)[-4:] == ["circuit_started", "circuit_approved", "circuit_approved", "circuit_signed"]


def _signed_reply(mail_id: int) -> int:
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id, [StepInput("signature", ids("secretaire.general"))])
    sign(user_context("secretaire.general"), circuit.id, _decision(circuit.id))
    return document_id


def test_signed_reply_sent_by_email_closes_mail(app_context):
    from app.correspondents.models import Correspondent
    from app.documents.replies import send_reply
    from app.notifications.models import EmailMessage

    mail_id = register_residence_request()
    document_id = _signed_reply(mail_id)
    # The sender of the request, given an e-mail address, is the reply's addressee.
    addressee = db.session.execute(select(Correspondent).where(Correspondent.last_name == "Traoré")).scalars().first()
    addressee.email = "a.traore@example.org"
    db.session.get(Document, document_id).correspondent_id = addressee.id
    db.session.commit()
    signed_sha256 = db.session.get(Document, document_id).versions[-1].pdf_sha256

    sent = send_reply(user_context("sejour"), document_id)

    assert sent.channel == "email"
    assert sent.close_problem is None
    message = db.session.execute(select(EmailMessage).where(EmailMessage.to_address == "a.traore@example.org")).scalar_one()
    assert message.subject.startswith("Réponse à votre courrier – ")
    assert [item.sha256 for item in message.attachments] == [signed_sha256]
    assert db.session.get(Document, document_id, populate_existing=True).state == "sent"
    assert db.session.get(Mail, mail_id, populate_existing=True).status == "closed"
    assert _events(mail_id)[-2:] == ["reply_sent", "close"]


def test_signed_reply_printed_without_address(app_context, client_as):
    mail_id = register_residence_request()
    document_id = _signed_reply(mail_id)
    db.session.get(Document, document_id).title = "Réponse n° 2026/14"
    db.session.commit()
    client = client_as("sejour")
    page = html.unescape(client.get(f"/mail/{mail_id}").get_data(as_text=True))

    assert f'id="send-reply-{document_id}"' in page
    assert "Imprimer la réponse signée pour l'envoi postal" in page
    response = client.post(f"/documents/{document_id}/send", data={"csrf_token": csrf_token(page)})

    assert response.status_code == 200
    assert response.data.startswith(b"%PDF")
    assert "R%C3%A9ponse%20n%C2%B0%202026-14%20" in response.headers["Content-Disposition"]
    assert db.session.get(Mail, mail_id, populate_existing=True).status == "closed"
    after = html.unescape(client.get(f"/mail/{mail_id}").get_data(as_text=True))
    assert "Réponse signée imprimée pour l'envoi postal" in after


def test_unsigned_reply_not_sent(app_context):
    from app.documents.operations import DocumentError
    from app.documents.replies import send_reply

    mail_id = register_residence_request()
    document_id = add_reply(mail_id)

    with pytest.raises(DocumentError):
        send_reply(user_context("sejour"), document_id)
    with pytest.raises(NotFound):
        send_reply(user_context("subventions"), document_id)
    assert db.session.get(Document, document_id).state == "draft"


def test_visible_block_on_signed_pdf(app_context):
    from babel.dates import format_date
    from pypdf import PdfReader

    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id, [StepInput("signature", ids("secretaire.general"))])
    sign(user_context("secretaire.general"), circuit.id, _decision(circuit.id))
    version = db.session.get(Document, document_id, populate_existing=True).versions[-1]
    with content_store().open_verified(version.pdf_sha256) as file:
        text = PdfReader(file).pages[-1].extract_text()
    assert "Éric Vasseur" in text
    # The date is written the French way, whatever the catalog: Babel's CLDR data formats it.
    assert format_date(today_in_paris(), "long", locale="fr") in text


def _in_thread_with_event_loop(app: Any, function: Any) -> None:
    """Call ``function`` from a coroutine, in a new thread whose asyncio event loop is running."""
    errors: list[BaseException] = []

    async def call() -> None:
        with app.app_context():
            try:
                function()
            finally:
                db.session.remove()

    def run() -> None:
        try:
            asyncio.run(call())
        except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("inside_event_loop", [False, True])
def test_pades_signature_validates(app, app_context, tmp_path, inside_event_loop):
    certificate = make_test_certificate(tmp_path)
    app.config.update(SIGNATURE_PKCS12=str(certificate.pkcs12_path), SIGNATURE_PKCS12_PASSWORD=certificate.password)
    try:
        mail_id = register_residence_request()
        document_id = add_reply(mail_id)
        circuit = _start(mail_id, document_id, [StepInput("signature", ids("secretaire.general"))])
        decision = _decision(circuit.id)
        db.session.commit()

        def sign_as_secretary() -> None:
            sign(user_context("secretaire.general"), circuit.id, decision)

        if inside_event_loop:
            _in_thread_with_event_loop(app, sign_as_secretary)
        else:
            sign_as_secretary()
    finally:
        app.config.update(SIGNATURE_PKCS12="", SIGNATURE_PKCS12_PASSWORD="")
    # End this session's read transaction: the signature may have been committed by another thread.
    db.session.rollback()
    version = db.session.get(Document, document_id).versions[-1]
    with content_store().open_verified(version.pdf_sha256) as file:
        status = validate_pades(file.read(), certificate.ca_der)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.bottom_line


def test_frozen_hash_mismatch_refused(app_context, client_as):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    version = db.session.get(DocumentVersion, circuit.version_id)
    # The version row now points at another PDF, as a change made behind the circuit's back would.
    version.pdf_sha256 = content_store().put_bytes(make_pdf("Texte modifié")).sha256
    db.session.commit()

    with pytest.raises(FrozenDocumentChanged):
        approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    assert _circuit(circuit.id).current_step == 1
    response = client_as("chef.sejour").get(f"/signature/circuit/{circuit.id}/pdf")
    assert response.status_code == 409


def test_corrupt_stored_file_refused(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    path = content_store().path_for(circuit.frozen_sha256)
    path.chmod(0o600)
    path.write_bytes(make_pdf("Fichier altéré sur le disque"))
    with pytest.raises(FrozenDocumentChanged):
        approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))


def test_new_version_restarts_circuit(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    assert _circuit(circuit.id).current_step == 2

    version = add_version(document_id, "Madame, votre demande est acceptée, sous réserve.")
    document_changed(db.session.get(Document, document_id), version, user_context("sejour"))
    db.session.commit()

    restarted = _circuit(circuit.id)
    assert (restarted.current_step, restarted.round) == (1, 2)
    assert restarted.version_id == version.id
    assert restarted.frozen_sha256 == version.pdf_sha256
    assert all(member.decided_at is None for member in restarted.members)
    entry = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail_id, HistoryEntry.event == "circuit_restarted")
    ).scalar_one()
    assert (entry.details["reason"], entry.details["version"]) == ("new_version", 2)
    # A decision made on the page of the first round is refused.
    with pytest.raises(CircuitMovedOn):
        approve(user_context("legalite"), circuit.id, Decision(expected_round=1, expected_step=2))


def test_rejection_needs_comment(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    with pytest.raises(ValidationFailed) as failure:
        reject(user_context("chef.sejour"), circuit.id, _decision(circuit.id, "   "), "author")
    assert "comment" in failure.value.field_errors
    assert _circuit(circuit.id).current_step == 1


def test_reject_to_previous_then_author(app_context, client_as):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    reject(user_context("legalite"), circuit.id, _decision(circuit.id, "Citer l'article L313-11."), "previous")
    back = _circuit(circuit.id)
    assert back.current_step == 1
    assert all(member.decided_at is None for member in back.members)
    assert "signature_returned" in set(db.session.execute(
        select(Notification.event).where(Notification.user_id == user_context("chef.sejour").user_id)
    ).scalars())

    reject(user_context("chef.sejour"), circuit.id, _decision(circuit.id, "À reprendre entièrement."), "author")
    assert _circuit(circuit.id).current_step == 0
    db.session.commit()
    page = html.unescape(client_as("sejour").get(f"/signature/circuit/{circuit.id}").get_data(as_text=True))
    assert 'id="last-rejection"' in page
    assert "À reprendre entièrement." in page
    assert "Citer l'article" not in page
    assert db.session.get(Mail, mail_id).chrono in _basket_chronos("sejour")
    resubmit(user_context("sejour"), circuit.id, _decision(circuit.id))
    assert (_circuit(circuit.id).current_step, _circuit(circuit.id).round) == (1, 2)


def test_parallel_step_needs_all(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    steps = [StepInput("approval", ids("chef.sejour", "legalite")), StepInput("signature", ids("secretaire.general"))]
    circuit = _start(mail_id, document_id, steps)
    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    assert _circuit(circuit.id).current_step == 1
    with pytest.raises(CircuitRefused):
        approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    with pytest.raises(PermissionDenied):
        sign(user_context("secretaire.general"), circuit.id, _decision(circuit.id))
    approve(user_context("legalite"), circuit.id, _decision(circuit.id))
    assert _circuit(circuit.id).current_step == 2


def test_delegate_acts_on_behalf(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    today = today_in_paris()
    db.session.add(Absence(user_id=user_context("chef.sejour").user_id, delegate_id=user_context("renouvellement").user_id,
                           starts_on=today, ends_on=today + timedelta(days=3)))
    db.session.commit()
    chrono = db.session.get(Mail, mail_id).chrono
    assert chrono in _basket_chronos("renouvellement")

    approve(user_context("renouvellement"), circuit.id, _decision(circuit.id))
    entry = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail_id, HistoryEntry.event == "circuit_approved")
    ).scalar_one()
    assert entry.actor_id == user_context("renouvellement").user_id
    assert entry.on_behalf_of_id == user_context("chef.sejour").user_id
    member = _circuit(circuit.id).step(1)[0]
    assert member.decided_by_id == user_context("renouvellement").user_id


def test_basket_shows_current_step_only(app_context):
    first = register_residence_request("Première demande")
    second = register_residence_request("Seconde demande")
    circuit_one = _start(first, add_reply(first))
    circuit_two = _start(second, add_reply(second))
    approve(user_context("chef.sejour"), circuit_two.id, _decision(circuit_two.id))
    chrono_one = db.session.get(Mail, first).chrono
    chrono_two = db.session.get(Mail, second).chrono

    assert _basket_chronos("chef.sejour") == {chrono_one}
    assert _basket_chronos("legalite") == {chrono_two}
    assert _basket_chronos("secretaire.general") == set()
    assert _basket_chronos("sejour") == set()
    assert circuit_one.id != circuit_two.id


def test_members_see_the_mail(app_context):
    mail_id = register_residence_request()
    mail = db.session.get(Mail, mail_id)
    assert not can_see(user_context("legalite"), mail)
    _start(mail_id, add_reply(mail_id))
    entries = db.session.execute(
        select(DistributionEntry.user_id).where(DistributionEntry.mail_id == mail_id, DistributionEntry.role == CIRCUIT)
    ).scalars().all()
    assert sorted(entries) == sorted(ids("chef.sejour", "legalite", "secretaire.general"))
    assert can_see(user_context("legalite"), db.session.get(Mail, mail_id))


def test_outsider_cannot_act(app_context, client_as):
    mail_id = register_residence_request()
    circuit = _start(mail_id, add_reply(mail_id))
    with pytest.raises(NotFound):
        approve(user_context("subventions"), circuit.id, _decision(circuit.id))
    # Sees every mail but is not a member of the step.
    with pytest.raises(PermissionDenied):
        approve(user_context("admin"), circuit.id, _decision(circuit.id))
    with pytest.raises(PermissionDenied):
        approve(user_context("legalite"), circuit.id, _decision(circuit.id))

    client = client_as("subventions")
    assert client.get(f"/signature/circuit/{circuit.id}").status_code == 404
    assert client.get(f"/signature/circuit/{circuit.id}/pdf").status_code == 404
    page = client.get("/signature/profile").get_data(as_text=True)
    response = client.post(f"/signature/circuit/{circuit.id}/approve", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 404
    assert _circuit(circuit.id).current_step == 1


def test_interrupt_by_author_only(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    with pytest.raises(PermissionDenied):
        interrupt(user_context("chef.sejour"), circuit.id, Decision())
    interrupt(user_context("sejour"), circuit.id, Decision(comment="Réponse abandonnée"))
    assert _circuit(circuit.id).state == "interrupted"
    assert db.session.get(Mail, mail_id, populate_existing=True).status == "new"
    assert db.session.get(Document, document_id, populate_existing=True).state == "draft"
    with pytest.raises(CircuitRefused):
        approve(user_context("chef.sejour"), circuit.id, Decision())


def test_model_circuit_from_schema(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = start_circuit(user_context("sejour"), mail_id, document_id, model_id="residence_permit_reply")
    assert [(member.position, member.kind, member.user.username) for member in circuit.members] == [
        (1, "approval", "chef.sejour"), (2, "signature", "secretaire.general"),
    ]
    with pytest.raises(ValidationFailed):
        start_circuit(user_context("sejour"), mail_id, add_reply(mail_id, "Autre"), model_id="grant_decision")


def test_rejected_start_form_keeps_steps(app_context, client_as):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    client = client_as("sejour")
    token = csrf_token(client.get(f"/mail/{mail_id}").get_data(as_text=True))
    chef, general = ids("chef.sejour", "secretaire.general")

    # A signature before an approval is refused: the form comes back as it was sent.
    response = client.post(f"/signature/mail/{mail_id}/start", data={
        "csrf_token": token, "document_id": str(document_id), "model": "",
        "step_1_kind": "signature", "step_1_users": [str(general)],
        "step_2_kind": "approval", "step_2_users": [str(chef)],
    })
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert '<details class="panel panel-default" id="start-circuit" open>' in page
    assert 'id="start-circuit-error"' in page
    step_1 = page[page.index('id="step-1-kind"'):page.index('id="step-2-kind"')]
    assert '<option value="signature" selected>' in step_1
    assert f'<option value="{general}" selected>' in step_1
    assert f'<option value="{chef}" selected>' in page[page.index('id="step-2-kind"'):]
    assert db.session.execute(select(SignatureCircuit).where(SignatureCircuit.mail_id == mail_id)).first() is None


def test_manual_steps_validated(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    with pytest.raises(ValidationFailed):
        _start(mail_id, document_id, [StepInput("approval", ids("chef.sejour"))])
    with pytest.raises(ValidationFailed):
        _start(mail_id, document_id, [StepInput("signature", ids("secretaire.general")),
                                      StepInput("approval", ids("chef.sejour"))])
    with pytest.raises(PermissionDenied):
        # The mail clerk who registered the mail sees it but does not process mail.
        start_circuit(user_context("courrier"), mail_id, document_id, steps=three_steps())


def test_simultaneous_decisions_one_wins(app):
    """The absent approver's delegate and the approver click at the same moment: exactly one approval counts."""
    with app.app_context():
        mail_id = register_residence_request()
        circuit = _start(mail_id, add_reply(mail_id))
        today = today_in_paris()
        db.session.add(Absence(user_id=user_context("chef.sejour").user_id,
                               delegate_id=user_context("renouvellement").user_id,
                               starts_on=today, ends_on=today + timedelta(days=1)))
        db.session.commit()
        decision = _decision(circuit.id)
        circuit_id = circuit.id

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(username: str) -> None:
        with app.app_context():
            actor = user_context(username)
            barrier.wait()
            try:
                approve(actor, circuit_id, Decision(expected_round=decision.expected_round,
                                                    expected_step=decision.expected_step))
            except (CircuitMovedOn, CircuitRefused) as refusal:
                outcomes.append(f"refused: {refusal.message}")
            else:
                outcomes.append("approved")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=act, args=(name,)) for name in ("chef.sejour", "renouvellement")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcome.split(":")[0] for outcome in outcomes) == ["approved", "refused"]
    with app.app_context():
        approvals = db.session.execute(
            select(HistoryEntry).where(HistoryEntry.mail_id == mail_id, HistoryEntry.event == "circuit_approved")
        ).scalars().all()
        assert len(approvals) == 1
        assert db.session.get(SignatureCircuit, circuit_id).current_step == 2


def test_stale_row_version_refused(app_context):
    """A circuit row changed between our read and our write fails the conditional UPDATE."""
    from sqlalchemy import update

    mail_id = register_residence_request()
    circuit = _start(mail_id, add_reply(mail_id))
    from app.signature import operations

    original = operations._load_for_update

    def load_then_race(actor, circuit_id):
        loaded = original(actor, circuit_id)
        # Another transaction commits a decision first: the row version moves on under us.
        db.session.execute(
            update(SignatureCircuit).where(SignatureCircuit.id == circuit_id)
            .values(row_version=SignatureCircuit.row_version + 1)
            .execution_options(synchronize_session=False)
        )
        return loaded

    operations._load_for_update = load_then_race
    try:
        with pytest.raises(CircuitMovedOn):
            approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    finally:
        operations._load_for_update = original
    assert _circuit(circuit.id).step(1)[0].decided_at is None


def test_reject_form_needs_comment(app_context, client_as):
    mail_id = register_residence_request()
    circuit = _start(mail_id, add_reply(mail_id))
    client = client_as("chef.sejour")
    page = client.get(f"/signature/circuit/{circuit.id}").get_data(as_text=True)
    assert 'id="reject-form"' in page
    response = client.post(f"/signature/circuit/{circuit.id}/reject", data={
        "csrf_token": csrf_token(page), "round": "1", "step": "1", "back_to": "author", "comment": "",
    }, follow_redirects=True)
    assert "un commentaire est obligatoire" in response.get_data(as_text=True) or \
        "a comment is required" in response.get_data(as_text=True)
    assert _circuit(circuit.id).current_step == 1
    refused = client.post(f"/signature/circuit/{circuit.id}/approve", data={"round": "1", "step": "1"})
    assert refused.status_code == 400


def test_signed_version_does_not_restart(app_context):
    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id)
    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    version = add_version(document_id, "Version signée ailleurs")
    version.signed = True
    db.session.commit()
    document_changed(db.session.get(Document, document_id), version, user_context("sejour"))
    db.session.commit()
    assert (_circuit(circuit.id).current_step, _circuit(circuit.id).round) == (2, 1)


def test_signature_image_drawn(app_context):
    from PIL import Image
    from pypdf import PdfReader

    from app.signature.operations import save_profile

    signatory = user_context("secretaire.general")
    with pytest.raises(ValidationFailed):
        save_profile(signatory, "Le secrétaire général", b"%PDF-1.4 not an image")
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), (20, 40, 160)).save(buffer, format="PNG")
    save_profile(signatory, "Le secrétaire général de la préfecture", buffer.getvalue())

    mail_id = register_residence_request()
    document_id = add_reply(mail_id)
    circuit = _start(mail_id, document_id, [StepInput("signature", [signatory.user_id])])
    sign(signatory, circuit.id, _decision(circuit.id))
    version = db.session.get(Document, document_id, populate_existing=True).versions[-1]
    with content_store().open_verified(version.pdf_sha256) as file:
        page = PdfReader(file).pages[-1]
        assert len(page.images) == 1
        assert "Le secrétaire général de la préfecture" in page.extract_text()


def test_signature_image_checked(app_context, client_as):
    from PIL import Image

    from app.signature.operations import MAX_SIGNATURE_IMAGE_BYTES, profile_of, save_profile

    signatory = user_context("secretaire.general")
    # A PNG signature followed by anything else is not a PNG image.
    with pytest.raises(ValidationFailed):
        save_profile(signatory, None, b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>")
    # 20 million pixels of one colour: a few kilobytes of PNG.
    huge = io.BytesIO()
    Image.new("L", (5000, 4000), 255).save(huge, format="PNG")
    with pytest.raises(ValidationFailed) as too_many:
        save_profile(signatory, None, huge.getvalue())
    assert "16" in too_many.value.field_errors["image"][0]
    assert profile_of(signatory.user_id) is None

    client = client_as("secretaire.general")
    token = csrf_token(client.get("/signature/profile").get_data(as_text=True))
    oversized = b"\x89PNG\r\n\x1a\n" + bytes(MAX_SIGNATURE_IMAGE_BYTES)
    response = client.post(
        "/signature/profile", data={"csrf_token": token, "title": "", "image": (io.BytesIO(oversized), "scan.png")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 200
    assert "2 Mo" in response.get_data(as_text=True)
    assert profile_of(signatory.user_id) is None


def test_circuit_models_validated(app_context, tmp_path):
    import shutil

    from app.configuration.loader import LoadFailed, load_directory

    schemas = tmp_path / "schemas"
    shutil.copytree(Path(__file__).resolve().parents[2] / "schemas", schemas)
    path = schemas / "circuits.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("departments: [DMI-SSE]", "departments: [DMI-XX]", 1)
    text = text.replace("status_after_signature: to_send\n    steps:\n      - kind: approval\n        users: [directeur.cabinet]",
                        "status_after_signature: sent\n    steps:\n      - kind: approval\n        users: [directeur.cabinet]", 1)
    text = text.replace("      - kind: approval\n        users: [subventions, legalite]\n      - kind: signature\n",
                        "      - kind: signature\n        users: [subventions, legalite]\n      - kind: approval\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LoadFailed) as failure:
        load_directory(schemas)
    found = {(error.file, error.key, error.code) for error in failure.value.errors}
    assert ("circuits.yaml", "circuits[0].departments[0]", "unknown_department") in found
    assert ("circuits.yaml", "circuits[1].status_after_signature", "unknown_status") in found
    assert any(key.startswith("circuits[2]") for _file, key, _code in found)
    assert all(error.line > 1 for error in failure.value.errors if error.file == "circuits.yaml")


def test_basket_page_lists_waiting_mail(app_context, client_as):
    mail_id = register_residence_request()
    _start(mail_id, add_reply(mail_id))
    chrono = db.session.get(Mail, mail_id).chrono
    client = client_as("chef.sejour")
    page = client.get("/mail/basket/signature_book").get_data(as_text=True)
    assert f'data-chrono="{chrono}"' in page
    book = client.get("/signature/").get_data(as_text=True)
    assert f'data-chrono="{chrono}"' in book
    assert [item.circuit.mail.chrono for item in waiting_for(user_context("chef.sejour"))] == [chrono]
    assert waiting_for(user_context("secretaire.general")) == []


def test_search_finds_mail_for_members(app_context):
    from app.search.criteria import SearchRequest
    from app.search.indexer import drain
    from app.search.operations import search

    mail_id = register_residence_request("Demande de titre de séjour Oyonnax")
    drain()
    request = SearchRequest(text="Oyonnax")
    assert search(user_context("legalite"), request).total == 0
    _start(mail_id, add_reply(mail_id))
    drain()
    assert search(user_context("legalite"), request).total == 1


def test_second_document_keeps_mail_in_book(app_context):
    mail_id = register_residence_request()
    first = _start(mail_id, add_reply(mail_id), [StepInput("signature", ids("secretaire.general"))])
    second = _start(mail_id, add_reply(mail_id, "Annexe à signer"), [StepInput("signature", ids("secretaire.general"))])
    assert second.previous_status == first.previous_status == "new"

    sign(user_context("secretaire.general"), first.id, _decision(first.id))
    assert db.session.get(Mail, mail_id, populate_existing=True).status == "in_signature_book"
    sign(user_context("secretaire.general"), second.id, _decision(second.id))
    assert db.session.get(Mail, mail_id, populate_existing=True).status == "to_send"


def test_next_step_members_notified(app_context):
    mail_id = register_residence_request()
    circuit = _start(mail_id, add_reply(mail_id))

    def notified(username: str) -> list[str]:
        return list(db.session.execute(
            select(Notification.event).where(Notification.user_id == user_context(username).user_id)
        ).scalars())

    assert notified("chef.sejour") == ["signature_requested"]
    assert notified("legalite") == []
    approve(user_context("chef.sejour"), circuit.id, _decision(circuit.id))
    assert notified("legalite") == ["signature_requested"]
