"""A user's mail deep in a long thread (more than 50 ids in References): the phone's answer still
names the mail the user replied to, just before the user's own (R-3.5).

The intake kept the first 50 ids of In-Reply-To and References: the newest, the mail replied to among
them, were lost before the answer's References was cut to the first and the latest, and clients that
thread by References (Thunderbird, Apple Mail) lost the link to the mails just before the user's.
Real SMTP in, the built-in SMSC over SMPP, the MO through its control port, a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

from gateway import forwarded
from gateway.conversations.answers import names_our_mail
from gateway.smtp.intake import read_mail
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed, two_way_config

REFS = [f"<ref{i}@example.com>" for i in range(60)]
MINE = "<mine61@acme.example>"


async def test_an_answer_to_a_mail_with_60_references_ends_with_the_mail_replied_to_and_the_users(
    tmp_path: Path,
) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core, port = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        msg = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Re: Spotkanie", Message_ID=MINE)
        msg["In-Reply-To"] = REFS[-1]
        msg["References"] = " ".join(REFS)
        assert (await gw.send(msg)).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", port, command))["ok"]
        await sink.wait(1)
        answer = parsed(sink.messages[0][2])
    assert answer["In-Reply-To"] == MINE
    refs = str(answer["References"]).split()
    assert refs[0] == REFS[0] and refs[-2:] == [REFS[-1], MINE], refs


def test_a_reply_deep_in_a_long_thread_begun_with_one_of_our_mails_is_known_as_a_reply_to_ours() -> None:
    # The thread's root (References' first id) is one of our reply mails; the user replies to the
    # newest of 60. The ids kept were In-Reply-To's first, so the root went, and the Reply to our mail
    # was read as anyone's (its quote of the phone's answer not refused, its subject sent).
    ours = f"<1.{forwarded.REPLY_ID_MARK}@{DOMAIN}>"
    refs = [ours, *(f"<r{i}@example.com>" for i in range(1, 60))]
    raw = (
        f"From: anna@acme.example\r\nTo: 601123456@{DOMAIN}\r\nSubject: Spotkanie\r\n"
        f"Message-ID: {MINE}\r\nIn-Reply-To: {refs[-1]}\r\nReferences: {' '.join(refs)}\r\n"
        "\r\nCzy 10:00 pasuje?\r\n"
    ).encode()
    thread = read_mail(raw).thread
    assert ours[1:-1] in thread and refs[-1][1:-1] in thread, thread
    assert names_our_mail(thread, [DOMAIN])
