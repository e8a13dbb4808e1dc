"""`[gateway] language = "pl"`: the line a mail adds of an MO whose UDH names a national GSM table not read
here is Polish, as the mail's other notes are ("[Nie dopasowano: …]").

It stayed English ("[The SMS used a national alphabet not supported here (Hindi): …]") in a mail
otherwise Polish. The built-in simulator delivers the MO over SMPP as an SMSC would; a real SMTP sink
catches the mail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.polish import note_words
from gateway.smtp.textclean import clean_body
from smsc.gsmalphabet import gsm_encode
from smsc.gsmshifts import note
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.test_mo_alphabet_not_read import HINDI, NOTE, udh
from tests.test_mo_binary import FALLBACK, body_of, smpp_part
from tests.test_two_way import parsed

SAID = (
    "SMS napisano alfabetem narodowym, którego bramka nie obsługuje (hindi): niektóre litery mogą być błędne"
)


def polish_config(tmp_path: Path, relay: int) -> Any:
    """`test_mo_binary`'s config (the simulator on SMPP, a fallback address), in Polish."""
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path, smsc_port=smpp, relay_port=relay, language="pl",
        extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n',
    ).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )  # fmt: skip
    return parse_config(text, source="test", base_dir=tmp_path)


async def test_a_polish_fallback_mail_says_the_alphabet_line_in_polish(tmp_path: Path) -> None:
    relay = free_port()
    cfg = polish_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick("smpp") is not None)
        part = smpp_part(udh(single=HINDI) + gsm_encode("Namaste"), 0, 0x40)
        await core._pick("smpp").send_part(tuple(part.items()))
        await sink.wait(1)
    assert sink.messages[0][1] == [FALLBACK]
    body = body_of(parsed(sink.messages[0][2]))
    assert body.startswith("Namaste\n\n[") and body.count(SAID) == 1, body
    assert "Nie dopasowano" in body and "national alphabet" not in body, body


def test_the_line_names_every_table_in_polish_and_a_forward_still_drops_it() -> None:
    said = note_words(note((HINDI, 11, 20)), "pl")
    assert said == (
        "SMS napisano alfabetem narodowym, którego bramka nie obsługuje (hindi, tamilski, nieznany, id 20):"
        " niektóre litery mogą być błędne"
    )
    assert note_words(NOTE, "en") == NOTE
    # The shape `textclean` knows as the gateway's own note: cut from a forward to a phone.
    forward = (
        "---------- Forwarded message ---------\nFrom: +48 601 222 222 <+48601222222@sms.example.com>\n"
        "Date: Thu, 3 Dec 2026 10:00\nSubject: SMS\n\n"
    )
    assert clean_body(f"{forward}Proszę oddzwonić.\n\n[{SAID}]\n").text == "Proszę oddzwonić."
