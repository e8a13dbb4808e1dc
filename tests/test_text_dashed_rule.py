"""A bare rule of dashes ("-----", a line of "-" as some Outlook versions and webmails write it in plain
text) above an Outlook header block (From:/Sent:/To:/Subject:, Od:/Wysłano:/Do:/Temat:, the internal
Od:/Data:/Do: of one company) heads a quoted message, as Outlook's "____" rule does (R-1.3): the rule and
the block below it go; at the top of a forward the forwarded text is what goes out. Before, the block
went and the rule stayed as the SMS's last line ("Prosze oddzwonic.\\n\\n-----"), and an internal
block (no "Sent:", no address) went to the phone whole. The negative twins keep what a person wrote
below a dashed line of their own. Through a running daemon whose built-in simulator records what each
phone got."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textclean import FORWARD_HEADER, QUOTED, clean_body
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

RULES = ["-----", "----------", "-" * 40, "_" * 32]
BLOCKS = [
    "From: Jan Kowalski <jan@acme.pl>\nSent: Monday, December 7, 2026 10:00 AM\nTo: Anna <anna@x.pl>\n"
    "Subject: Oferta",
    "Od: Jan Kowalski <jan@acme.pl>\nWysłano: poniedziałek, 7 grudnia 2026 10:00\nDo: Anna <anna@x.pl>\n"
    "Temat: Oferta",
    "Od: Jan Kowalski\nData: czwartek, 3 grudnia 2026 10:00\nDo: Anna Nowak\nTemat: Oferta",
]
OLD = "\n\nStara treść oferty.\n"
# What a person writes below a dashed line of their own stays (in a new mail: no reply headers).
KEPT = [
    "Progi rabatowe:\n-----\n> 1000 zł - 5%\n> 5000 zł - 10%",
    "Plan:\n-----\nOd: 10:00\nDo: 12:00\nTemat: przegląd",
    "Plan:\n-----\nOd: Jan\nData: jutro\nDo: Anna",
    "Cennik:\n----------\nKawa 5 zł\nHerbata 4 zł",
]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("block", BLOCKS)
def test_a_bare_rule_above_a_header_block_goes_with_the_quote(rule: str, block: str) -> None:
    cleaned = clean_body(f"Proszę oddzwonić.\n\n{rule}\n{block}{OLD}")
    assert cleaned.text == "Proszę oddzwonić." and QUOTED in cleaned.removed


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("block", BLOCKS)
def test_a_forward_headed_by_a_bare_rule_sends_the_forwarded_text(rule: str, block: str) -> None:
    cleaned = clean_body(f"{rule}\n{block}{OLD}")
    assert cleaned.text == "Stara treść oferty." and FORWARD_HEADER in cleaned.removed


@pytest.mark.parametrize("body", KEPT)
def test_a_persons_own_dashed_line_keeps_what_is_below_it(body: str) -> None:
    assert read_mail(mail(body, subject="Plan")).body == body


async def test_through_smtp_the_phone_gets_no_rule_nor_quote(tmp_path: Path) -> None:
    bodies = [f"Proszę oddzwonić.\n\n{rule}\n{BLOCKS[2]}{OLD}" for rule in RULES[:2]]
    mails = [mail(body, subject="Re: Oferta") for body in bodies]
    mails.append(mail(f"-----\n{BLOCKS[1]}{OLD}", subject="Fwd: Oferta"))
    got = await phone_texts(tmp_path, mails)
    assert got == ["Oferta: Proszę oddzwonić."] * 2 + ["Oferta: Stara treść oferty."]
