"""Warehouse names: go-snakecase exactly (spec 4.3), reserved words, digits, length, collisions."""

from __future__ import annotations

import pytest

from sluice.warehouse.naming import RESERVED_WORDS, Namer, identifier, shorten, snakecase

SNAKECASE = [
    # The examples of spec 4.3.
    ("sampleText", "sample_text"),
    ("SAMPLE 2 TEXT", "sample_2_text"),
    ("___$$Base64Encode", "base64_encode"),
    ("something.com", "something_com"),
    ("productID", "product_id"),
    ("HTMLParser", "htmlparser"),
    ("Signed Up", "signed_up"),
    ("Order Completed", "order_completed"),
    # go-snakecase's own test table.
    ("sample text", "sample_text"),
    ("sample-text", "sample_text"),
    ("sample_text", "sample_text"),
    ("sample___text", "sample_text"),
    ("inviteYourCustomersAddInvites", "invite_your_customers_add_invites"),
    ("sample 2 Text", "sample_2_text"),
    ("   sample   2    Text   ", "sample_2_text"),
    ("   $#$sample   2    Text   ", "sample_2_text"),
    ("FOO:BAR$BAZ", "foo_bar_baz"),
    ("FOO#BAR#BAZ", "foo_bar_baz"),
    ("$something%", "something"),
    ("•¶§ƒ˚foo˙∆˚¬", "foo"),
    ("CStringRef", "cstring_ref"),
    # Non-ASCII letters are separators, never kept.
    ("Commande passée", "commande_pass_e"),
    ("日本語", ""),
    ("Größe", "gr_e"),
    # Already snake: unchanged; a leading underscore is a separator like any other.
    ("already_snake_case", "already_snake_case"),
    ("context_app_version", "context_app_version"),
    ("_open", "open"),
    # Digits belong to the word they follow; runs of capitals stay one word.
    ("101 Account Update", "101_account_update"),
    ("sample2Text", "sample2_text"),
    ("userID2", "user_id2"),
    ("iOSVersion", "i_osversion"),
    ("123ABC", "123abc"),
    ("v2_API", "v2_api"),
    ("", ""),
    ("trailing_", "trailing"),
]


@pytest.mark.parametrize(("raw", "expected"), SNAKECASE, ids=[repr(r) for r, _ in SNAKECASE])
def test_snakecase_is_go_snakecase(raw: str, expected: str) -> None:
    assert snakecase(raw) == expected


IDENTIFIERS = [
    ("open", "_open"),  # Redshift's example
    ("from", "_from"),
    ("timestamp", "_timestamp"),
    ("101_account_update", "_101_account_update"),  # Redshift's example for tables
    ("open_rate", "open_rate"),
    ("opened", "opened"),
    ("plan", "plan"),
]


@pytest.mark.parametrize(("snake", "expected"), IDENTIFIERS, ids=[s for s, _ in IDENTIFIERS])
def test_reserved_words_and_leading_digits_get_an_underscore(snake: str, expected: str) -> None:
    assert identifier(snake, 63) == expected


def test_reserved_words_are_lower_case_sql_words() -> None:
    assert {"select", "user", "order", "group", "open", "table"} <= RESERVED_WORDS
    assert all(word == word.lower() and word.isidentifier() for word in RESERVED_WORDS)


def test_protected_names_get_an_underscore() -> None:
    protected = frozenset({"user_id", "received_at"})
    assert identifier("user_id", 63, protected) == "_user_id"
    assert identifier("received_at", 63, protected) == "_received_at"
    assert identifier("email", 63, protected) == "email"


def test_long_names_are_cut_deterministically_and_without_collisions() -> None:
    a = "a_very_long_property_name_" * 5 + "first"
    b = "a_very_long_property_name_" * 5 + "second"
    cut_a, cut_b = shorten(a, 63), shorten(b, 63)
    assert len(cut_a) == len(cut_b) == 63
    assert cut_a != cut_b
    assert cut_a == shorten(a, 63)  # the same name always gives the same identifier
    assert cut_a.startswith(a[:54] + "_")
    assert shorten("short", 63) == "short"
    assert shorten("x" * 63, 63) == "x" * 63


def test_namer_schema_tables_and_columns() -> None:
    namer = Namer(63)
    assert namer.schema("web") == "web"
    assert namer.schema("my-app") == "my_app"
    assert namer.schema("2nd-site") == "_2nd_site"
    assert namer.event_table("Order Completed") == "order_completed"
    assert namer.event_table("101 Account Update") == "_101_account_update"
    assert namer.event_table("Pages") == "_pages"  # would shadow Segment's own table
    assert namer.event_table("Order") == "_order"  # reserved word
    assert namer.event_table("日本語") == ""  # no event table: tracks only
    assert len(namer.event_table("Event " * 30)) == 63
    assert namer.column("user_id", frozenset({"user_id"})) == "_user_id"
