"""Normal forms of phones and emails."""

from __future__ import annotations

import pytest

from hub.domain import Phone
from hub.identity import InvalidContact, clean_name, normalize_email, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "8 (912) 345-67-89",
        "+7 912 345 67 89",
        "79123456789",
        "9123456789",
        "+7(912)3456789",
        "8-912-345-67-89",
    ],
)
def test_russian_formats_meet_at_one_e164(raw: str) -> None:
    assert normalize_phone(raw) == Phone("+79123456789")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 495 123-45-67 доб. 123", Phone("+74951234567", "123")),
        ("+7 495 123-45-67 ext. 55", Phone("+74951234567", "55")),
        ("+74951234567#12", Phone("+74951234567", "12")),
    ],
)
def test_extensions_stay_beside_the_number(raw: str, expected: Phone) -> None:
    assert normalize_phone(raw) == expected


def test_default_region_applies_to_national_numbers() -> None:
    assert normalize_phone("(650) 253-0000", "US") == Phone("+16502530000")
    assert normalize_phone("+1 650 253 0000", "RU") == Phone("+16502530000")


@pytest.mark.parametrize(
    "raw", ["", "12", "abc", "+7 912", "9" * 30, "8-800-FLOWERS", "+1 650 253 OOOO"]
)
def test_invalid_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContact):
        normalize_phone(raw)


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ivan.Petrov@Example.COM ") == "ivan.petrov@example.com"
    for bad in ["", "ivan", "ivan@", "@x.ru", "a b@x.ru", "a@b"]:
        with pytest.raises(InvalidContact):
            normalize_email(bad)


def test_names_are_tidied() -> None:
    assert clean_name("  Иван \n Петров ") == "Иван Петров"
    assert clean_name("   ") is None
