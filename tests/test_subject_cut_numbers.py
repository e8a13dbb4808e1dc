"""The 30-character subject cut and numbers written in groups (R-1.3): its spaces are no word
boundaries. "Zadzwoń do klienta pod 601 234 567 teraz" reached the phone as "Zadzwoń do klienta pod
601 234", "Do zapłaty za fakturę 12: 1 230,50 zł" as "Do zapłaty za fakturę 12: 1": another number,
one the reader dials or pays. The cut now goes before such a number; one that opens the subject
("601 234 567 pilne…", an account number to pay) goes whole, up to an IBAN's length in groups.
Through a running daemon whose built-in simulator records what each phone got; `phone_texts` serves
the other text tests too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.smtp.intake import _cut_subject, read_mail
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_cut_from import daemon_config
from tests.test_intake import mail


async def phone_texts(tmp_path: Path, mails: list[bytes]) -> list[str]:
    """What each phone got (its parts joined) for `mails`, each sent over SMTP to a phone of its own."""
    relay = free_port()
    cfg, _ = daemon_config(tmp_path, relay)
    numbers = [f"6012345{i:02d}" for i in range(len(mails))]
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for i, (raw, number) in enumerate(zip(mails, numbers, strict=True)):
            raw = raw.replace(b"<m1@example.com>", f"<phone-text-{i}@example.com>".encode())
            assert (await gw.send(raw, [f"{number}@{DOMAIN}"], sender=STAFF)).error is None
        await gw.until(lambda: {str(r["destination"])[-9:] for r in core.records} >= set(numbers))
        await asyncio.sleep(0.3)  # a further part would have come by now
    return ["".join(r["text"] for r in core.records if str(r["destination"]).endswith(n)) for n in numbers]


CASES = [
    ("Zadzwoń do klienta pod 601 234 567 teraz", "Zadzwoń do klienta pod: treść"),
    ("Do zapłaty za fakturę 12: 1 230,50 zł", "Do zapłaty za fakturę 12: treść"),
    ("Proszę oddzwonić na +48 22 123 45 67", "Proszę oddzwonić na: treść"),
    ("Przelew 1.230,50 zł dla ACME do jutra", "Przelew 1.230,50 zł dla ACME: treść"),
    # A number opening the subject goes whole past the limit: cut, it was another account to pay.
    ("61 1090 1014 0000 0712 1981 2874 przelew dziś", "61 1090 1014 0000 0712 1981 2874: treść"),
    # What the cut left whole stays as it was.
    ("Spotkanie w sali 12 o godzinie 10:00 jutro", "Spotkanie w sali 12 o godzinie: treść"),
    ("Zamówienie nr 12345 zostało wysłane dziś", "Zamówienie nr 12345 zostało: treść"),
]


@pytest.mark.parametrize(("subject", "sent"), CASES)
def test_the_subject_cut_goes_before_a_number_in_groups(subject: str, sent: str) -> None:
    m = read_mail(mail("treść", subject=subject))
    # A number goes whole past 30 or is left out: then the note names the length sent.
    head = sent.partition(": ")[0]
    left_out = subject[len(head) :].lstrip(" ,;:-–(")[:1] in tuple("+0123456789")
    note = f"subject cut to {len(head) if len(head) > 30 or left_out else 30} characters"
    assert m.text == sent and note in m.removed


@pytest.mark.parametrize(
    ("subject", "limit", "short"),
    [
        ("601 234 567 pilne, oddzwoń do klienta", 8, "601 234 567"),
        ("+48 601 234 567 pilne", 10, "+48 601 234 567"),
        ("(601 234 567) pilne", 6, "601 234 567"),
        ("601 234 567 pilne", 11, "601 234 567"),
        ("Tel. 601 234 567 pilne", 8, "Tel."),
    ],
)
def test_a_number_opening_the_subject_goes_whole(subject: str, limit: int, short: str) -> None:
    assert _cut_subject(subject, limit) == short


def test_a_subject_that_is_one_long_number_is_still_cut() -> None:
    number = " ".join(["123"] * 12)
    assert read_mail(mail("x", subject=number)).text == "123 123 123 123 123 123 123: x"


async def test_through_smtp_the_phone_gets_no_part_of_a_number(tmp_path: Path) -> None:
    got = await phone_texts(tmp_path, [mail("treść", subject=subject) for subject, _ in CASES])
    assert got == [sent for _, sent in CASES]
