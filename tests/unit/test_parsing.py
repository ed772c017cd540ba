from datetime import date
from decimal import Decimal

import pytest

from app.core.parsing import (
    ParseError,
    fold_for_match,
    format_date_fr,
    format_decimal,
    normalise_text,
    parse_date,
    parse_decimal,
)

# --- parse_decimal -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["12 345,50", "12\u00a0345,50", "12\u202f345,50"],
    ids=["space", "no-break-space", "narrow-no-break-space"],
)
def test_parse_decimal_french_group_separators(text: str) -> None:
    assert parse_decimal(text) == Decimal("12345.50")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345,5", Decimal("12345.5")),
        ("12345", Decimal(12345)),
        ("-3,2", Decimal("-3.2")),
        ("\u22123,2", Decimal("-3.2")),
        ("+7", Decimal(7)),
        ("12 345,50 €", Decimal("12345.50")),
        ("12 345,50€", Decimal("12345.50")),
        ("12 345,50 EUR", Decimal("12345.50")),
        ("  0,05  ", Decimal("0.05")),
        ("1 234 567,891", Decimal("1234567.891")),
        ("12,345", Decimal("12.345")),
    ],
)
def test_parse_decimal_french_accepted(text: str, expected: Decimal) -> None:
    assert parse_decimal(text, "fr") == expected


@pytest.mark.parametrize(
    "text",
    ["1.234,5", "12,345.50", "12.50", "12 34,5", "1 2345,5", "12  345", "", "€", "abc", "1,2,3", ",5", "5,", "--3", "1e3", "１２３"],
)
def test_parse_decimal_french_rejected(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_decimal(text, "fr")
    assert caught.value.code == "invalid_decimal"
    assert caught.value.value == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12,345.50", Decimal("12345.50")),
        ("12345.50", Decimal("12345.50")),
        ("-3.2", Decimal("-3.2")),
        ("1,234,567", Decimal(1234567)),
        ("12.5 EUR", Decimal("12.5")),
    ],
)
def test_parse_decimal_english_accepted(text: str, expected: Decimal) -> None:
    assert parse_decimal(text, "en") == expected


@pytest.mark.parametrize("text", ["12345,5", "12 345,50", "-3,2", "1.234,5", "12 345.50", "12,34.5"])
def test_parse_decimal_english_rejects_french_forms(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_decimal(text, "en")
    assert caught.value.code == "invalid_decimal"


def test_parse_decimal_region_locale() -> None:
    assert parse_decimal("12 345,50", "fr_FR") == Decimal("12345.50")


def test_parse_decimal_unsupported_locale() -> None:
    with pytest.raises(ValueError, match="unsupported locale"):
        parse_decimal("1", "de")


def test_parse_error_message_names_value() -> None:
    with pytest.raises(ParseError, match="1.234,5"):
        parse_decimal("1.234,5")


# --- format_decimal ------------------------------------------------------


def test_format_decimal_french_output() -> None:
    assert format_decimal(Decimal("12345.5"), "fr") == "12\u202f345,50"


def test_format_decimal_english_output() -> None:
    assert format_decimal(Decimal("12345.5"), "en") == "12,345.50"


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize(
    "value",
    ["0", "0.01", "-3.2", "12345.50", "1234567.89", "-1234567.89", "999999999999.99"],
)
def test_format_decimal_round_trip(value: str, locale: str) -> None:
    amount = Decimal(value)
    assert parse_decimal(format_decimal(amount, locale), locale) == amount


def test_format_decimal_rounds_to_cents() -> None:
    assert format_decimal(Decimal("2.675"), "fr") == "2,68"


# --- parse_date ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("31/12/2026", date(2026, 12, 31)),
        ("1/2/2026", date(2026, 2, 1)),
        ("01/02/2026", date(2026, 2, 1)),
        ("31.12.2026", date(2026, 12, 31)),
        ("31-12-2026", date(2026, 12, 31)),
        ("2026-12-31", date(2026, 12, 31)),
        (" 29/02/2028 ", date(2028, 2, 29)),
    ],
)
def test_parse_date_accepted(text: str, expected: date) -> None:
    assert parse_date(text) == expected


def test_parse_date_slash_is_day_first() -> None:
    assert parse_date("03/04/2026") == date(2026, 4, 3)


def test_parse_date_month_first_rejected() -> None:
    with pytest.raises(ParseError):
        parse_date("12/31/2026")


@pytest.mark.parametrize(
    "text",
    [
        "31/12/26",
        "31/12/026",
        "31/12-2026",
        "2026/12/31",
        "2026-1-5",
        "",
        "demain",
        "31 décembre 2026",
        "31/12/2026 10:00",
        "３１/１２/２０２６",
    ],
)
def test_parse_date_rejected(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_date(text)
    assert caught.value.code == "invalid_date"
    assert caught.value.value == text


@pytest.mark.parametrize("text", ["31/02/2026", "29/02/2026", "00/01/2026", "2026-13-01"])
def test_nonexistent_date_rejected(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_date(text)
    assert caught.value.code == "nonexistent_date"
    assert caught.value.value == text


def test_format_date_fr_pads() -> None:
    assert format_date_fr(date(2026, 2, 1)) == "01/02/2026"


def test_format_date_fr_round_trip() -> None:
    assert parse_date(format_date_fr(date(2026, 12, 31))) == date(2026, 12, 31)


# --- normalise_text and fold_for_match -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hélène LEFÈVRE", "helene lefevre"),
        ("Île-de-France", "ile-de-france"),
        ("Œuvre cœur", "oeuvre coeur"),
        ("Lætitia", "laetitia"),
        ("Straße", "strasse"),
        ("KÖNIG", "konig"),
        ("Søren Łukasz", "soren lukasz"),
        ("d\u2019Île", "d'ile"),
        ("d\u2018Île", "d'ile"),
        ("d\u02bcÎle", "d'ile"),
        ("  a \t b\u00a0\u202fc  ", "a b c"),
        ("ﬁnance", "finance"),
        ("Рапорт", "рапорт"),
    ],
)
def test_normalise_text_cases(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lefèvre-Giraud", "lefevre giraud"),
        ("préfet d\u2019Île-de-France", "prefet d ile de france"),
        ("O'Connor", "o connor"),
        ("Saint-Étienne (42)", "saint etienne 42"),
        ("a--b__c", "a b c"),
        ("«\u00a0Mairie\u00a0»", "mairie"),
    ],
)
def test_fold_for_match_cases(text: str, expected: str) -> None:
    assert fold_for_match(text) == expected
