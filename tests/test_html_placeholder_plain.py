"""A text/plain alternative that only says to read the HTML one is no text (R-1.3).

multipart/alternative's text/plain wins, and some mailers and alerting systems put a note there:
"To view the message, please use an HTML compatible email viewer!" went to the phone instead of the
alert in the HTML part ("Serwer DB01 nie odpowiada od 10:05."). Such a plain part is passed over for
the HTML; a plain part with text of its own still wins, and the note is still sent when there is no
other alternative to read.

read_mail as the intake reads a mail off the wire, then through a real SMTP client into the running
daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway
from tests.test_two_way import two_way_config

ALERT = "Serwer DB01 nie odpowiada od 10:05. Dyzurny: 601 222 333."
PLACEHOLDERS = [
    "To view the message, please use an HTML compatible email viewer!",
    "This is an HTML message. Please use an HTML capable mail program to read this message.",
    "Wiadomość w formacie HTML. Aby ją wyświetlić, użyj programu obsługującego HTML.",
    "Aby wyświetlić tę wiadomość, użyj programu pocztowego obsługującego HTML.",
]


def alternative(plain: str, html: str | None = f"<p>{ALERT}</p>", to: str = f"601123456@{DOMAIN}") -> bytes:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = to
    msg["Subject"] = "ALARM DB01"
    msg.set_content(plain)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


@pytest.mark.parametrize("note", PLACEHOLDERS)
def test_the_html_alternative_is_read_for_a_placeholder(note: str) -> None:
    assert read_mail(alternative(note)).text == f"ALARM DB01: {ALERT}"


def test_a_plain_part_of_its_own_still_wins_and_a_lone_note_is_sent() -> None:
    own = "To view the message about DB01 log in to the console."
    assert read_mail(alternative(own)).text == f"ALARM DB01: {own}"
    assert read_mail(alternative(PLACEHOLDERS[0], "<p></p>")).text == f"ALARM DB01: {PLACEHOLDERS[0]}"


async def test_through_smtp_the_phone_gets_the_alert(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(alternative(PLACEHOLDERS[0]), [f"601123456@{DOMAIN}"])).error is None
        await gw.until(lambda: len(core.records) >= 1)
        assert [r["text"] for r in core.records] == [f"ALARM DB01: {ALERT}"]
