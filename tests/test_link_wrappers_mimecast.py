"""Mimecast's URL Protect rewrites each link to "https://protect-eu.mimecast.com/s/<token>" (since 2024
"https://url.<region>.m.mimecastprotect.com/s/<token>"), at most with "?domain=<the target's host>"
after it. Unlike Safe Links, Proofpoint and Google (tests/test_link_wrappers.py) the target is not in
the URL: only Mimecast's server knows it. So the link stays as written: the host of "?domain=" is no
target (it would open the site's home page, not the shared file), and the network is never asked.
A Safe Links wrapper around a Mimecast link gives the Mimecast link. Through a running daemon whose
built-in simulator records what each phone got, too."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textlinks import unwrap_in_text, unwrapped
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

MIMECAST = [
    "https://protect-eu.mimecast.com/s/AbCdEfGhIjKlMnOpQrStUv?domain=acme.pl",
    "https://protect-eu.mimecast.com/s/AbCdEfGhIjKlMnOpQrStUv",
    "https://url.uk.m.mimecastprotect.com/s/YP9XCWQRPfDXo1NIKijuVb2y7?domain=teams.microsoft.com",
]
SAFE_AROUND = (
    "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fprotect-eu.mimecast.com%2Fs%2F"
    "AbCdEfGhIjKlMnOpQrStUv%3Fdomain%3Dacme.pl&data=05%7C02%7Cjan%40acme.pl%7C0%7C&sdata=AbC%3D&reserved=0"
)


@pytest.mark.parametrize("url", MIMECAST)
def test_a_mimecast_link_stays_as_written(url: str) -> None:
    assert unwrapped(url) == url
    assert unwrap_in_text(f"Plik: {url}.") == f"Plik: {url}."


def test_a_safe_links_wrapper_around_a_mimecast_link_gives_the_mimecast_link() -> None:
    assert unwrapped(SAFE_AROUND) == MIMECAST[0]


CASES = [
    (f"Umowa do podpisu: {MIMECAST[0]}", f"Umowa do podpisu: {MIMECAST[0]}"),
    (f"Umowa do podpisu: {SAFE_AROUND}", f"Umowa do podpisu: {MIMECAST[0]}"),
]


@pytest.mark.parametrize(("body", "sent"), CASES)
def test_the_intake_sends_the_mimecast_link(body: str, sent: str) -> None:
    assert read_mail(mail(body, subject="Umowa")).text == f"Umowa: {sent}"


async def test_through_smtp_the_phone_gets_the_mimecast_link(tmp_path: Path) -> None:
    got = await phone_texts(tmp_path, [mail(body, subject="Umowa") for body, _ in CASES])
    assert got == [f"Umowa: {sent}" for _, sent in CASES]
