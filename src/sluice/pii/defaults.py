"""Segment's default PII matchers (Privacy Portal "Default PII Matchers"), as key terms and value
patterns.

Keys are compared in a normalised form: camelCase, `_`, `-`, `.` and spaces split into lower
case words (`billingAddress` -> "billing address"). A key matches a term when the term's words
appear in it as whole words (`user_email` matches "email", `zip` does not match "ip"); `name`
alone is too common a word for that (`context.library.name`, `properties.product_name`), so it
matches only the person-name keys listed. Values are matched whole (a value *is* an email, not a
sentence mentioning one), and only when they have the shape: card numbers must pass Luhn's
check, phone numbers need a `+` or the usual separators (a bare run of digits is an id far more
often than a phone number).
"""

from __future__ import annotations

import ipaddress
import re

RED = "red"
YELLOW = "yellow"
GREEN = "green"

# matcher name -> (classification, key terms matched as whole words)
KEY_MATCHERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "social security number": (RED, ("social security number", "social security", "ssn")),
    "password": (RED, ("password", "passwd", "pwd")),
    "visa": (RED, ("visa",)),
    "veteran": (RED, ("veteran",)),
    "disability": (RED, ("disability",)),
    "credit card": (RED, ("credit card", "card number", "ccn", "cc number", "cvv", "cvc")),
    "passport": (RED, ("passport",)),
    "token": (RED, ("token",)),
    "race": (YELLOW, ("race",)),
    "birthdate": (YELLOW, ("birthdate", "birth date", "date of birth", "dob", "birthday")),
    "phone": (YELLOW, ("phone", "telephone", "mobile number")),
    "address": (YELLOW, ("address",)),
    "gender": (YELLOW, ("gender",)),
    "ethnicity": (YELLOW, ("ethnicity",)),
    "citizenship": (YELLOW, ("citizenship", "nationality")),
    "street": (YELLOW, ("street",)),
    "city": (YELLOW, ("city",)),
    "zipcode": (YELLOW, ("zipcode", "zip code", "zip", "postal code", "postcode")),
    "email": (YELLOW, ("email", "e mail")),
    "certificate": (YELLOW, ("certificate",)),
    "license": (YELLOW, ("license", "licence")),
    "identification": (YELLOW, ("identification",)),
    "serial": (YELLOW, ("serial",)),
    "ip": (YELLOW, ("ip", "ip address", "ipv4", "ipv6")),
    "photo": (YELLOW, ("photo",)),
    "salary": (YELLOW, ("salary",)),
    "religion": (YELLOW, ("religion",)),
    "mac": (YELLOW, ("mac address", "mac")),
    "sex": (YELLOW, ("sex",)),
    "sexual orientation": (YELLOW, ("sexual orientation",)),
    "medication": (YELLOW, ("medication", "medications")),
    "allergy": (YELLOW, ("allergy", "allergies")),
    "condition": (YELLOW, ("condition", "medical condition")),
    "diagnosis": (YELLOW, ("diagnosis",)),
    "procedure": (YELLOW, ("procedure",)),
}
# "name": whole keys only (normalised).
NAME_KEYS = frozenset(
    {"name", "first name", "last name", "full name", "middle name", "given name", "family name",
     "surname", "maiden name", "firstname", "lastname", "fullname"}
)  # fmt: skip
NAME_MATCHER = ("name", YELLOW)

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_NANP = re.compile(r"\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}")
_INTERNATIONAL = re.compile(r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){1,5}")
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
MAX_VALUE_CHARS = 254  # the longest email address; longer values are text, not one field


def luhn(digits: str) -> bool:
    """Luhn's checksum, which every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_number(text: str) -> bool:
    """13 to 19 digits (spaces or dashes between), a card network's first digit (2 to 6: a
    millisecond timestamp starts with 1), and Luhn's check."""
    if text[0] not in "23456" or not _CARD.fullmatch(text):
        return False
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn(digits)


def phone_number(text: str) -> bool:
    if _NANP.fullmatch(text):
        return True
    if _INTERNATIONAL.fullmatch(text):
        count = sum(ch.isdigit() for ch in text)
        return 8 <= count <= 15
    return False


def ip_address(text: str) -> bool:
    if ":" in text:
        if text.count(":") < 2:
            return False
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return False
        return True
    return _IPV4.fullmatch(text) is not None


# value matcher name -> (classification, test). Tried in this order; Red first.
def default_value_match(text: str) -> tuple[str, str] | None:
    """(matcher, classification) for a string value with a PII shape, else None."""
    n = len(text)
    if n < 7 or n > MAX_VALUE_CHARS:
        return None
    first = text[0]
    if first.isdigit():
        if n == 11 and _SSN.fullmatch(text):
            return ("social security number", RED)
        if n <= 23 and card_number(text):
            return ("credit card", RED)
        if n <= 39 and ip_address(text):
            return ("ip", YELLOW)
        if n <= 20 and phone_number(text):
            return ("phone", YELLOW)
    elif first == "+" or first == "(":
        if n <= 24 and phone_number(text):
            return ("phone", YELLOW)
    elif ":" in text and n <= 39 and ip_address(text):
        return ("ip", YELLOW)
    if "@" in text and _EMAIL.fullmatch(text):
        return ("email", YELLOW)
    return None
