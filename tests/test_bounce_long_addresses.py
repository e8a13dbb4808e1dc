"""A bounce about several numbers quotes every address the mail went to, also when one is too long for
a header line of its own (a long gateway domain): the report is about each of them."""

from __future__ import annotations

from email import message_from_string
from email.policy import default

from gateway.bounce import _original_headers

DOMAIN = "gateway-sms.dzial-logistyki-i-zaopatrzenia.oddzial-wielkopolska.example.pl"


def test_every_long_address_is_quoted() -> None:
    finals = [f"601123477@{DOMAIN}", f"601123478@{DOMAIN}"]
    written = _original_headers({"mail_from": "anna@acme.example", "subject": "Zmiana"}, finals)
    quoted = message_from_string(written + "\n", policy=default)
    assert [a.addr_spec for a in quoted["To"].addresses] == finals


def test_short_addresses_are_quoted_alike() -> None:
    finals = ["601123477@sms.example.com", "601123478@sms.example.com"]
    written = _original_headers({"mail_from": "anna@acme.example", "subject": "Zmiana"}, finals)
    quoted = message_from_string(written + "\n", policy=default)
    assert [a.addr_spec for a in quoted["To"].addresses] == finals
