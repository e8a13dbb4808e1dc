"""A phone's name in To is read whatever form of its number the address has (two-way, R-3).

Outlook writes a contact whose number has spaces as `"Pan Kowalski" <"601 123 471"@sms.example.com>`,
a quoted local part, which RCPT takes. The name was lost: the To reader took only an unquoted
local part, and the match compared local parts as strings, so `<0048-601-123-474@…>` in To did not
name the phone RCPT gave as `0048601123474@…` either. Names are now matched by the E.164 number
both forms read as. Real mail over SMTP into the daemon, the built-in simulator over SMPP, each
phone answering, the answers caught by a real SMTP relay.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.smtp import displaynames
from smsc.simulator.control import send_command
from smsc.simulator.partlog import answer_numbers
from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_answer_from_name import raw_mail, sender_of
from tests.test_two_way import two_way_config

# (the To address as the mail program wrote it, its display name, the RCPT address, the phone)
CONTACTS = (
    ('"Pan Kowalski"', f'"601 123 471"@{DOMAIN}', f'"601 123 471"@{DOMAIN}', "+48601123471"),
    ('"Pani Nowak"', f"601123472@{DOMAIN}", f"601123472@{DOMAIN}", "+48601123472"),
    ('"Biuro Kraków"', f'"+48 601 123 473"@{DOMAIN}', f'"+48 601 123 473"@{DOMAIN}', "+48601123473"),
    ("Jan Zieliński", f"0048-601-123-474@{DOMAIN}", f"0048601123474@{DOMAIN}", "+48601123474"),
    ('"Ola \\"Szefowa\\""', f'"+48 (601) 123-475"@{DOMAIN}', f"+48601123475@{DOMAIN}", "+48601123475"),
)
SHOWN = {
    "+48601123471": "Pan Kowalski (+48 601 123 471)",
    "+48601123472": "Pani Nowak (+48 601 123 472)",
    "+48601123473": "Biuro Kraków (+48 601 123 473)",
    "+48601123474": "Jan Zieliński (+48 601 123 474)",
    "+48601123475": "Ola Szefowa (+48 601 123 475)",
}


def answers(sink: Any) -> list[bytes]:
    return [raw for _, _, raw in sink.messages]


async def test_each_phone_answers_under_the_name_to_gave_it_whatever_its_form(tmp_path: Path) -> None:
    to = ", ".join(f"{name} <{address}>" for name, address, _, _ in CONTACTS)
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        core = gw.daemon.simulator.core
        sent = await gw.send(raw_mail(to, msgid="<quoted@acme.example>"), [c[2] for c in CONTACTS])
        assert sent.error is None and not sent.refused
        await gw.until(lambda: len(core.records) == len(CONTACTS))
        for record in core.records:
            phone, ours = answer_numbers(record)
            command = {"op": "mo", "source": phone, "destination": ours, "text": f"Tak {phone}"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(len(CONTACTS))
        got = {address.removesuffix(f"@{DOMAIN}"): name for name, address in map(sender_of, answers(sink))}
        assert got == SHOWN


def test_the_quoted_local_part_is_read_as_the_number_it_holds() -> None:
    # Cc too, and a quoted pair inside the quotes; an address that is no number keeps its name.
    got = displaynames.named(
        '"Pan Kowalski" <"601 123 471"@sms.example.com>, Biuro <biuro@acme.example>',
        '"Pani Nowak" <"601\\ 123\\"472"@sms.example.com>',
        ("utf-8",),
    )
    assert got == (
        ("601 123 471", "Pan Kowalski"),
        ("biuro", "Biuro"),
        ('601 123"472', "Pani Nowak"),
    )


def test_a_hostile_100_kb_to_costs_little() -> None:
    # Each shape an address reader could backtrack on: unclosed quotes and brackets, quoted local
    # parts just over the bound, escapes without end, names without an address.
    shapes = (
        '<"' + "1 " * 50_000,
        '<"' + "\\" * 100_000,
        ('"x" <"' + "1" * 70 + '"@d> ') * 1_300,
        "<" * 100_000,
        '"' * 100_000,
        ('a "b <"c\\"@' + " " * 20) * 3_000,
        ('"' + "n" * 1_990 + '" <"6 0"@d> ') * 50,
        ('<"' + '\\"' * 31 + '"@' + "d" * 254) * 350,
        '<"6 0"@d> ' * 10_000,
    )
    for to in shapes:
        to = to[:100_000]
        start = time.perf_counter()
        displaynames.named(to, to, ("utf-8",))
        assert time.perf_counter() - start < 0.25, to[:40]
