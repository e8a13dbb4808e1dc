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
from gateway.smtp.textclean import FORWARD_HEADER, QUOTED, clean_body, collapse
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
# A memo typed under a dashed line, its block like a company's loose one (no address, no "Sent:"): in a
# new mail it is the person's text; it went as its first line alone ("Notatka służbowa").
MEMOS = [
    "Notatka służbowa\n----------\nOd: Jan Kowalski\nDo: Anna Nowak\nData: 7.12.2026\nTemat: urlop\n\n"
    "Proszę o akceptację urlopu 14-18.12.",
    "Protokół\n-----\nOd: dział kadr\nData: 7.12.2026 10:00\nDo: wszyscy pracownicy\n\n"
    "Szkolenie BHP w piątek.",
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


@pytest.mark.parametrize("body", MEMOS)
def test_a_memo_under_dashes_in_a_new_mail_goes_whole(body: str) -> None:
    assert clean_body(body, quoting=False).text == body
    assert read_mail(mail(body, subject="Urlop")).body == body


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("headers", ["", "In-Reply-To: <a1@acme.pl>\n"])
def test_what_heads_a_quote_under_dashes_in_a_reply_or_a_new_mail(block: str, headers: str) -> None:
    """In a reply the company's loose block below dashes heads a quote; in a new mail only Outlook's
    full block (an address, "Wysłano:") does."""
    body = f"Proszę oddzwonić.\n\n-----\n{block}{OLD}"
    got = read_mail(mail(body, subject="Oferta", headers=headers)).body
    loose = block is BLOCKS[2] and not headers
    assert got == (collapse(body.split("\n")) if loose else "Proszę oddzwonić.")


async def test_through_smtp_the_phone_gets_no_rule_nor_quote(tmp_path: Path) -> None:
    bodies = [f"Proszę oddzwonić.\n\n{rule}\n{BLOCKS[2]}{OLD}" for rule in RULES[:2]]
    mails = [mail(body, subject="Re: Oferta") for body in bodies]
    mails.append(mail(f"-----\n{BLOCKS[1]}{OLD}", subject="Fwd: Oferta"))
    mails.append(mail(MEMOS[0], subject="Urlop"))  # a new mail: the memo is its text
    got = await phone_texts(tmp_path, mails)
    assert got == ["Oferta: Proszę oddzwonić."] * 2 + ["Oferta: Stara treść oferty.", f"Urlop: {MEMOS[0]}"]
