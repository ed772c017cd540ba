"""Tests for the demo data generator and the demo letter renderer."""

import io
import random
import re
from datetime import date, timedelta
from decimal import Decimal

import pypdf
import pytest

from app.demo.generator import (
    MAIL_TYPE_CATEGORIES,
    NATIONALITIES,
    category_for_mail_type,
    format_euros,
    format_french_date,
    generate_correspondent,
    generate_mail,
    iter_mails,
    with_de,
)
from app.demo.letters import render_letter_pdf

TODAY = date(2026, 12, 4)
ALL_TYPES = {mail_type_id: 1.0 for mail_type_id in MAIL_TYPE_CATEGORIES}
CORRESPONDENT_KEYS = {
    "kind", "civility", "first_name", "last_name", "organisation",
    "email", "phone", "address", "postcode", "city",
}


def luhn_is_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mails_of_type(mail_type_id: str, count: int = 200) -> list[dict]:
    return list(iter_mails(seed=11, count=count, today=TODAY, type_weights={mail_type_id: 1.0}))


@pytest.fixture(scope="module")
def mixed_mails() -> list[dict]:
    return list(iter_mails(seed=2026, count=3000, today=TODAY, type_weights=ALL_TYPES))


# Determinism


def test_iter_mails_same_seed_same_output():
    first = list(iter_mails(seed=5, count=300, today=TODAY, type_weights=ALL_TYPES))
    second = list(iter_mails(seed=5, count=300, today=TODAY, type_weights=ALL_TYPES))
    assert first == second


def test_iter_mails_other_seed_other_output():
    first = list(iter_mails(seed=5, count=50, today=TODAY, type_weights=ALL_TYPES))
    second = list(iter_mails(seed=6, count=50, today=TODAY, type_weights=ALL_TYPES))
    assert first != second


def test_generate_mail_same_seed_same_output():
    first = generate_mail(random.Random(42), "grant_request", "incoming", TODAY)
    second = generate_mail(random.Random(42), "grant_request", "incoming", TODAY)
    assert first == second


def test_generate_correspondent_same_seed_same_output():
    first = [generate_correspondent(random.Random(9)) for _ in range(3)]
    second = [generate_correspondent(random.Random(9)) for _ in range(3)]
    assert first == second


# Dates


def test_mail_dates_within_last_year(mixed_mails):
    for mail in mixed_mails:
        assert mail["arrival_date"] <= TODAY, mail
        assert mail["letter_date"] <= mail["arrival_date"], mail
        assert mail["arrival_date"] - mail["letter_date"] <= timedelta(days=5), mail
        assert TODAY - mail["letter_date"] <= timedelta(days=365), mail


def test_generate_mail_dates_never_future():
    rng = random.Random(3)
    for _ in range(500):
        mail = generate_mail(rng, "public_complaint", "incoming", TODAY)
        assert mail["arrival_date"] <= TODAY, mail
        assert mail["letter_date"] <= mail["arrival_date"], mail
        assert TODAY - mail["letter_date"] <= timedelta(days=365), mail


def test_mail_arrival_never_on_weekend(mixed_mails):
    for mail in mixed_mails:
        assert mail["arrival_date"].weekday() < 5, mail


def test_iter_mails_in_arrival_order(mixed_mails):
    arrival_dates = [mail["arrival_date"] for mail in mixed_mails]
    assert arrival_dates == sorted(arrival_dates)


def test_outgoing_letter_date_equals_arrival(mixed_mails):
    for mail in mixed_mails:
        if mail["category"] != "incoming":
            assert mail["letter_date"] == mail["arrival_date"], mail


# Channel, priority, confidentiality


def test_internal_mail_channel_internal(mixed_mails):
    for mail in mixed_mails:
        if mail["category"] == "internal":
            assert mail["channel"] == "internal", mail


def test_incoming_mail_channels(mixed_mails):
    incoming = [mail for mail in mixed_mails if mail["category"] == "incoming"]
    channels = [mail["channel"] for mail in incoming]
    assert set(channels) == {"post", "email", "web"}
    # Expected shares: post 60 %, email 30 %, web 10 %.
    assert 0.55 < channels.count("post") / len(channels) < 0.65
    assert 0.25 < channels.count("email") / len(channels) < 0.35
    assert 0.06 < channels.count("web") / len(channels) < 0.14


def test_priorities_and_confidentiality(mixed_mails):
    priorities = [mail["priority"] for mail in mixed_mails]
    assert set(priorities) == {"normal", "urgent", "very_urgent"}
    # Expected shares: normal 85 %, urgent 12 %, very urgent 3 %, confidential 3 %.
    assert 0.80 < priorities.count("normal") / len(priorities) < 0.90
    assert 0.01 < priorities.count("very_urgent") / len(priorities) < 0.05
    confidential_share = sum(mail["confidential"] for mail in mixed_mails) / len(mixed_mails)
    assert 0.01 < confidential_share < 0.05


def test_unknown_category_raises():
    with pytest.raises(ValueError, match="invalid category 'incomming'"):
        generate_mail(random.Random(1), "public_complaint", "incomming", TODAY)


def test_invalid_type_weights_raise():
    with pytest.raises(ValueError, match="type_weights is empty"):
        list(iter_mails(seed=1, count=5, today=TODAY, type_weights={}))
    with pytest.raises(ValueError, match="invalid type_weights"):
        list(iter_mails(seed=1, count=5, today=TODAY, type_weights={"grant_request": 0}))


def test_category_for_unknown_type_ids():
    assert category_for_mail_type("outgoing_notification") == "outgoing"
    assert category_for_mail_type("internal_report") == "internal"
    assert category_for_mail_type("prize_nomination") == "incoming"


# Subjects and bodies


def test_every_type_has_subject_and_body(mixed_mails):
    for mail in mixed_mails:
        assert mail["subject"].strip(), mail
        assert "{" not in mail["subject"], mail
        assert 2 <= len(mail["body_paragraphs"]) <= 4, mail


def test_fallback_subject_for_unknown_type():
    mail = generate_mail(random.Random(4), "prize_nomination", "incoming", TODAY)
    assert mail["subject"].strip()
    assert mail["fields"] == {}


# Field values


def test_residence_permit_fields():
    for mail in mails_of_type("residence_permit_request"):
        fields = mail["fields"]
        assert re.fullmatch(r"\d{10}", fields["foreign_national_number"]), fields
        assert fields["nationality"] in NATIONALITIES, fields
        assert fields["permit_kind"] in {"first_request", "renewal", "change_of_status"}, fields


def test_grant_amount_range_and_cents():
    for mail in mails_of_type("grant_request"):
        amount = mail["fields"]["amount_requested"]
        assert isinstance(amount, Decimal), amount
        assert Decimal("500") <= amount <= Decimal("250000"), amount
        assert amount.as_tuple().exponent == -2, amount


def test_grant_siret_format_and_checksum():
    for mail in mails_of_type("grant_request"):
        siret = mail["fields"]["association_siret"]
        assert re.fullmatch(r"\d{14}", siret), siret
        assert luhn_is_valid(siret), siret


def test_grant_siret_stable_per_association():
    sirets_by_organisation: dict[str, set[str]] = {}
    for mail in mails_of_type("grant_request", count=400):
        organisation = mail["correspondent"]["organisation"]
        sirets_by_organisation.setdefault(organisation, set()).add(mail["fields"]["association_siret"])
    for organisation, sirets in sirets_by_organisation.items():
        assert len(sirets) == 1, (organisation, sirets)


def test_parliamentary_letter_fields():
    for mail in mails_of_type("parliamentary_letter"):
        fields = mail["fields"]
        correspondent = mail["correspondent"]
        assert fields["chamber"] in {"assemblee_nationale", "senat"}, fields
        expected_role = "député" if fields["chamber"] == "assemblee_nationale" else "sénat"
        assert expected_role in fields["elected_official"], fields
        writer = f"{correspondent['civility']} {correspondent['first_name']} {correspondent['last_name']},"
        assert fields["elected_official"].startswith(writer), (fields, correspondent)


def test_event_authorisation_fields():
    for mail in mails_of_type("event_authorisation_request"):
        fields = mail["fields"]
        assert isinstance(fields["event_date"], date), fields
        assert fields["event_date"] > mail["letter_date"], fields
        assert isinstance(fields["expected_attendance"], int), fields
        assert fields["expected_attendance"] > 0, fields


def test_event_dates_past_and_future():
    event_dates = [mail["fields"]["event_date"] for mail in mails_of_type("event_authorisation_request")]
    assert any(event_date > TODAY for event_date in event_dates)
    assert any(event_date < TODAY for event_date in event_dates)


def test_document_request_fields():
    for mail in mails_of_type("administrative_document_request"):
        document = mail["fields"]["document_requested"]
        assert isinstance(document, str), document
        assert document[:1].isupper(), document


@pytest.mark.parametrize(
    "mail_type_id",
    ["naturalisation_request", "public_complaint", "outgoing_reply", "outgoing_convocation",
     "internal_memo", "internal_note_to_prefect"],
)
def test_types_without_fields(mail_type_id):
    for mail in mails_of_type(mail_type_id, count=20):
        assert mail["fields"] == {}, mail


# Correspondents


def test_correspondent_keys_and_kinds():
    rng = random.Random(8)
    for _ in range(300):
        correspondent = generate_correspondent(rng)
        assert set(correspondent) == CORRESPONDENT_KEYS, correspondent
        assert correspondent["kind"] in {"person", "organisation"}, correspondent
        assert correspondent["civility"] in {"M.", "Mme", None}, correspondent
        assert re.fullmatch(r"\d{5}", correspondent["postcode"]), correspondent


def test_correspondent_emails_ascii_reserved_domain():
    rng = random.Random(8)
    for _ in range(300):
        email = generate_correspondent(rng)["email"]
        if email is None:
            continue
        assert re.fullmatch(r"[a-z0-9.-]+@[a-z0-9.-]+\.example", email), email


def test_person_email_derived_from_name():
    rng = random.Random(12)
    correspondents = [generate_correspondent(rng) for _ in range(300)]
    named = [c for c in correspondents if c["kind"] == "person" and c["email"] and c["last_name"] == "Lefèvre"]
    assert named, "seed 12 should produce at least one person named Lefèvre with an e-mail"
    for correspondent in named:
        assert "lefevre" in correspondent["email"], correspondent


def test_correspondent_phone_format():
    rng = random.Random(8)
    for _ in range(300):
        phone = generate_correspondent(rng)["phone"]
        if phone is None:
            continue
        assert re.fullmatch(r"0[1-9]( \d\d){4}", phone), phone


def test_directory_reused_across_mails(mixed_mails):
    correspondents = {id(mail["correspondent"]) for mail in mixed_mails if mail["correspondent"]}
    assert len(correspondents) <= 3000 // 4 + 10


def test_directory_emails_unique(mixed_mails):
    unique_correspondents = {id(mail["correspondent"]): mail["correspondent"]
                             for mail in mixed_mails if mail["correspondent"]}
    emails = [c["email"] for c in unique_correspondents.values() if c["email"]]
    assert len(emails) == len(set(emails))


def test_internal_mail_has_no_correspondent(mixed_mails):
    for mail in mixed_mails:
        if mail["category"] == "internal":
            assert mail["correspondent"] is None, mail
        else:
            assert mail["correspondent"] is not None, mail


def test_grant_request_from_association():
    for mail in mails_of_type("grant_request", count=50):
        assert mail["correspondent"]["kind"] == "organisation", mail["correspondent"]


# French formatting


def test_format_french_date():
    assert format_french_date(date(2026, 12, 4)) == "4 décembre 2026"
    assert format_french_date(date(2026, 3, 1)) == "1er mars 2026"
    assert format_french_date(date(2025, 8, 15)) == "15 août 2025"


def test_format_euros():
    assert format_euros(Decimal("12500.5")) == "12 500,50 €"
    assert format_euros(Decimal("500.00")) == "500,00 €"


def test_with_de_elision():
    assert with_de("Créteil") == "de Créteil"
    assert with_de("Évry-Courcouronnes") == "d'Évry-Courcouronnes"
    assert with_de("Ivry-sur-Seine") == "d'Ivry-sur-Seine"


# Letters


def letter_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_letter_pdf_keeps_accented_subject():
    mail = generate_mail(random.Random(1), "grant_request", "incoming", TODAY)
    mail["subject"] = "Demande de subvention – Œuvre des Sœurs de Saint-Étienne : 1 250,00 € d’aide"
    correspondent = generate_correspondent(random.Random(1))

    pdf = render_letter_pdf(mail, correspondent)

    assert pdf.startswith(b"%PDF")
    text = letter_text(pdf)
    assert "Demande de subvention – Œuvre des Sœurs de Saint-Étienne : 1 250,00 € d’aide" in text
    assert "œ" in text
    assert "é" in text


def test_letter_pdf_date_and_page_count():
    mail = generate_mail(random.Random(2), "public_complaint", "incoming", TODAY)
    mail["letter_date"] = date(2026, 12, 1)
    correspondent = generate_correspondent(random.Random(2))

    pdf = render_letter_pdf(mail, correspondent)

    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1
    assert "le 1er décembre 2026" in letter_text(pdf)


@pytest.mark.parametrize("category", ["incoming", "outgoing", "internal"])
def test_letter_pdf_each_category(category):
    mail_type_id = {"incoming": "parliamentary_letter", "outgoing": "outgoing_reply",
                    "internal": "internal_note_to_prefect"}[category]
    mail = mails_of_type(mail_type_id, count=1)[0]

    pdf = render_letter_pdf(mail, mail["correspondent"], prefecture_name="Préfecture de l'Essonne")

    text = letter_text(pdf)
    assert mail["subject"] in text.replace("\n", " ")
    assert "Préfecture de l'Essonne" in text


def test_letter_pdf_same_input_same_bytes():
    mail = generate_mail(random.Random(5), "outgoing_reply", "outgoing", TODAY)
    correspondent = generate_correspondent(random.Random(5))
    assert render_letter_pdf(mail, correspondent) == render_letter_pdf(mail, correspondent)


def test_letter_pdf_long_body_continues():
    mail = generate_mail(random.Random(6), "public_complaint", "incoming", TODAY)
    mail["body_paragraphs"] = ["Une phrase administrative assez longue pour remplir la page. " * 10] * 12
    correspondent = generate_correspondent(random.Random(6))

    pdf = render_letter_pdf(mail, correspondent)

    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) > 1
