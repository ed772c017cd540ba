import itertools

import pytest

from app.correspondents.matching import (
    ContactFingerprint,
    name_key,
    normalise_email,
    normalise_phone,
    score_duplicate,
)

HELENE_WITH_EMAIL = ContactFingerprint(
    name="Hélène Lefèvre-Giraud",
    organisation=None,
    email="h.lefevre@example.org",
    phone="+33 6 00 00 00 01",
)
HELENE_UPPER_CASE = ContactFingerprint(
    name="HELENE LEFEVRE GIRAUD",
    organisation=None,
    email="H.Lefevre@Example.org",
    phone=None,
)
HELENE_WITH_PHONE = ContactFingerprint(
    name="Helene Lefevre-Giraud",
    organisation=None,
    email=None,
    phone="06 00 00 00 01",
)
HELENE_LEFEBVRE = ContactFingerprint(
    name="Hélène Lefèbvre",
    organisation=None,
    email="helene.lefebvre@example.net",
    phone=None,
)
HELENE_VARIANTS = [HELENE_WITH_EMAIL, HELENE_UPPER_CASE, HELENE_WITH_PHONE]

# --- normalise_email -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  H.Lefevre@Example.org ", "h.lefevre@example.org"),
        ("<h.lefevre@example.org>", "h.lefevre@example.org"),
        ("mailto:H.Lefevre@example.org", "h.lefevre@example.org"),
    ],
)
def test_normalise_email_accepted(value: str, expected: str) -> None:
    assert normalise_email(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "h.lefevre", "@example.org", "h.lefevre@", "a@b@c", "h lefevre@example.org"])
def test_normalise_email_rejected(value: str | None) -> None:
    assert normalise_email(value) is None


# --- normalise_phone -----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "06 00 00 00 01",
        "06.00.00.00.01",
        "+33 6 00 00 00 01",
        "0033 6 00 00 00 01",
        "+33 (0)6 00 00 00 01",
        "06-00-00-00-01",
        "0600000001",
        "+33 06 00 00 00 01",
        "06\u00a000\u00a000\u00a000\u00a001",
    ],
)
def test_normalise_phone_french_mobile(value: str) -> None:
    assert normalise_phone(value) == "+33600000001"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0049 30 123456", "+4930123456"),
        ("+1 (202) 555-0100", "+12025550100"),
        ("01 23 45 67 89", "+33123456789"),
        ("0590 12 34 56", "+590590123456"),
        ("+590 590 12 34 56", "+590590123456"),
        ("0262 12 34 56", "+262262123456"),
    ],
)
def test_normalise_phone_other_numbers(value: str, expected: str) -> None:
    assert normalise_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "n/a",
        "06 00 00 00",
        "06 00 00 00 01 02",
        "6 00 00 00 01",
        "00 00 00 00 00",
        "+33 6 00 00 00",
        "+44 12",
        "+1234567890123456",
        "06 00 00 00 0a",
        "０６００００００01",
        "06 00 00 00 01 poste 12",
    ],
)
def test_normalise_phone_garbage(value: str | None) -> None:
    assert normalise_phone(value) is None


def test_normalise_phone_other_region_unsupported() -> None:
    with pytest.raises(ValueError, match="unsupported default region"):
        normalise_phone("030 123456", default_region="DE")


# --- name_key ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["Hélène Lefèvre-Giraud", "HELENE LEFEVRE GIRAUD", "Helene Lefevre-Giraud", "  hélène   lefèvre – giraud "],
)
def test_name_key_equivalent_spellings(value: str) -> None:
    assert name_key(value) == "helene lefevre giraud"


def test_name_key_keeps_word_order() -> None:
    assert name_key("Giraud Hélène") == "giraud helene"


def test_name_key_apostrophe() -> None:
    assert name_key("Jeanne d’Arc") == name_key("JEANNE D'ARC")


# --- score_duplicate -----------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.permutations(HELENE_VARIANTS, 2)),
)
def test_helene_variants_probable(first: ContactFingerprint, second: ContactFingerprint) -> None:
    assert score_duplicate(first, second).level == "probable"


@pytest.mark.parametrize("other", HELENE_VARIANTS)
def test_lefebvre_at_most_possible(other: ContactFingerprint) -> None:
    assert score_duplicate(HELENE_LEFEBVRE, other).level in ("possible", "none")
    assert score_duplicate(other, HELENE_LEFEBVRE).level in ("possible", "none")


def test_same_email_reason() -> None:
    match = score_duplicate(HELENE_WITH_EMAIL, HELENE_UPPER_CASE)
    assert match.reasons == ["same_email"]


def test_same_name_and_phone_reasons() -> None:
    match = score_duplicate(HELENE_WITH_EMAIL, HELENE_WITH_PHONE)
    assert match.reasons == ["same_name", "same_phone"]


def test_letter_difference_possible_with_same_phone() -> None:
    first = ContactFingerprint(name="Hélène Lefèvre", phone="06 00 00 00 01")
    second = ContactFingerprint(name="Hélène Lefèbvre", phone="06 00 00 00 01")
    match = score_duplicate(first, second)
    assert match.level == "possible"
    assert match.reasons == ["similar_name"]


def test_shorter_surname_possible() -> None:
    first = ContactFingerprint(name="Hélène Lefèvre")
    second = ContactFingerprint(name="Hélène Lefèvre-Giraud")
    assert score_duplicate(first, second).level == "possible"


def test_umlaut_same_name_probable() -> None:
    first = ContactFingerprint(name="Jürgen KONIG", email="j.konig@example.de")
    second = ContactFingerprint(name="Jürgen KÖNIG", phone="+49 30 123456")
    assert score_duplicate(first, second).level == "probable"


def test_umlaut_conflicting_email_possible() -> None:
    first = ContactFingerprint(name="Jürgen KONIG", email="j.konig@example.de")
    second = ContactFingerprint(name="Jürgen KÖNIG", email="juergen.koenig@example.at")
    match = score_duplicate(first, second)
    assert match.level == "possible"
    assert match.reasons == ["same_name", "different_email"]


def test_same_name_conflicting_phone_possible() -> None:
    first = ContactFingerprint(name="Jean Martin", phone="06 00 00 00 01")
    second = ContactFingerprint(name="Jean Martin", phone="06 00 00 00 02")
    match = score_duplicate(first, second)
    assert match.level == "possible"
    assert match.reasons == ["same_name", "different_phone"]


def test_same_name_other_organisation_possible() -> None:
    first = ContactFingerprint(name="Jean Martin", organisation="Mairie de Melun")
    second = ContactFingerprint(name="Jean Martin", organisation="SDIS 77")
    match = score_duplicate(first, second)
    assert match.level == "possible"
    assert match.reasons == ["same_name", "different_organisation"]


def test_same_name_organisation_spelling_probable() -> None:
    first = ContactFingerprint(name="Jean Martin", organisation="Mairie de Saint-Étienne")
    second = ContactFingerprint(name="Jean Martin", organisation="MAIRIE DE SAINT ETIENNE")
    assert score_duplicate(first, second).level == "probable"


def test_same_phone_different_names_possible() -> None:
    first = ContactFingerprint(name="Standard mairie", phone="01 23 45 67 89")
    second = ContactFingerprint(name="Paul Durand", phone="+33 1 23 45 67 89")
    match = score_duplicate(first, second)
    assert match.level == "possible"
    assert match.reasons == ["same_phone"]


def test_unrelated_contacts_none() -> None:
    first = ContactFingerprint(name="Paul Durand", email="p.durand@example.org")
    second = ContactFingerprint(name="Marie Curie", email="m.curie@example.org")
    assert score_duplicate(first, second).level == "none"


def test_empty_names_not_matched() -> None:
    assert score_duplicate(ContactFingerprint(name=""), ContactFingerprint(name="  ")).level == "none"


COMITE = ContactFingerprint(name="Comité des fêtes de Lagny-sur-Marne", organisation="Comité des fêtes de Lagny-sur-Marne")
COMITE_CONTACT = ContactFingerprint(name="Étienne François", organisation="COMITE DES FETES DE LAGNY SUR MARNE")


def test_organisation_matches_its_contact_person() -> None:
    assert score_duplicate(COMITE, COMITE_CONTACT).level == "probable"
    assert score_duplicate(COMITE_CONTACT, COMITE).level == "probable"


def test_two_people_of_one_organisation_are_not() -> None:
    other = ContactFingerprint(name="Lucie Martin", organisation="Comité des fêtes de Lagny-sur-Marne")
    assert score_duplicate(other, COMITE_CONTACT).level == "none"
