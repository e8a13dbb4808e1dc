"""Minutes set as a superscript after an hour read as a time (R-1.3).

Polish print writes an hour with its minutes raised: "godz. 10<sup>00</sup>". As text they ran into
the hour and the phone got "o godz. 1000". Two-digit minutes in a superscript right after an hour now
come out as "10:00": "00" always, others after a word that names a time ("od 8<sup>30</sup>"); a
power ("2<sup>10</sup>", "m<sup>2</sup>") and a footnote stay as they were.

The intake's HTML conversion, then through a real SMTP client into the running daemon and out to its
built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.conftest import DOMAIN, free_port, running_gateway
from tests.test_signature_html_containers import html_mail
from tests.test_two_way import two_way_config


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        (
            "<p>Zebranie zarządu o godz. 10<sup>00</sup> w sali 2.</p>",
            "Zebranie zarządu o godz. 10:00 w sali 2.",
        ),
        ("<p>Biuro czynne od 8<sup>30</sup> do 16<sup>00</sup>.</p>", "Biuro czynne od 8:30 do 16:00."),
        # A power, a unit and a footnote are no time.
        ("<p>Pamięć 2<sup>10</sup> bajtów, 5 m<sup>2</sup>, przypis<sup>12</sup>.</p>", None),
        ("<p>Wynik 1.5<sup>00</sup> i 25<sup>00</sup>.</p>", None),
    ],
)
def test_superscript_minutes_after_an_hour(markup: str, text: str | None) -> None:
    expected = text or markup.removeprefix("<p>").removesuffix("</p>").replace("<sup>", "").replace(
        "</sup>", ""
    )
    assert read_mail(bytes(html_mail(markup))).text == expected


async def test_through_smtp_the_phone_gets_the_hour(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        rcpt = f"601123456@{DOMAIN}"
        assert (
            await gw.send(html_mail("<p>Zebranie o godz. 10<sup>00</sup> w sali 2.</p>", rcpt))
        ).error is None
        await gw.until(lambda: len(core.records) >= 1)
        assert [r["text"] for r in core.records] == ["Zebranie o godz. 10:00 w sali 2."]
