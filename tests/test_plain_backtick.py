"""A grave accent or an acute typed for an apostrophe ("Don`t", "It´s") is made plain too (R-1.4).

Neither is in GSM 03.38 (its default alphabet has no "`" and no "´"), so one of them sent a
124-character text as two UCS-2 parts instead of one GSM part. They are made "'" now when such
punctuation alone keeps a text from GSM (the grave accent only between two letters: around a word it
quotes a command, "run `ls`"); a text that stays UCS-2 goes as written.

plan() directly, then through a real SMTP client into the running daemon and out to its built-in
SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.encoding import Coding, plan
from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.test_two_way import two_way_config

TEXT = (
    "Prosze potwierdzic odbior towaru do jutra do godziny 12, inaczej zamowienie zostanie anulowane. "
    "Don`t worry, it´s all ok."
)
PLAIN = TEXT.replace("`", "'").replace("´", "'")


@pytest.mark.parametrize("text", [TEXT, "Don`t", "It´s ok"])
def test_an_apostrophe_typed_as_an_accent_goes_in_gsm(text: str) -> None:
    p = plan(text)
    assert (p.coding, len(p.parts), p.text, p.plain_punctuation) == (
        Coding.GSM7,
        1,
        text.replace("`", "'").replace("´", "'"),
        True,
    )


def test_a_text_that_stays_ucs2_keeps_it_as_written() -> None:
    text = "Proszę potwierdzić. Don`t worry."
    p = plan(text)
    assert (p.coding, p.text) == (Coding.UCS2, text)
    # Around a word a grave accent quotes a command: no apostrophe, and it still forces UCS-2.
    p = plan("run `ls` now")
    assert (p.coding, p.text, p.reason) == (Coding.UCS2, "run `ls` now", "` forced UCS-2")


async def test_through_smtp_the_phone_gets_one_gsm_part(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", TEXT))).error is None
        await gw.until(lambda: len(core.records) >= 1)
        assert [(r["data_coding"], r["text"]) for r in core.records] == [(0, PLAIN)]
