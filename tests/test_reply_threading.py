"""Answers stay in one thread in clients that thread by References (Thunderbird, Apple Mail, mutt).

The first answer to a mail named that mail; after the user's Reply, the next answer named only the
user's reply (which sits in Sent), not the mail the conversation started with, nor the first
answer: each exchange showed as a thread of its own. Each answer now continues the chain the user's
latest mail carried. Real SMTP in, the built-in SMSC over SMPP, MOs through its control port, and
the answer mails caught at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config

FIRST = "<m0@acme.example>"
REPLY = "<r1@acme.example>"


def answer(text: str) -> dict[str, object]:
    """The phone answers the last SMS it got (the simulator's control command)."""
    return {"op": "mo", "reply_to_last": True, "text": text}


async def test_the_answer_after_the_users_reply_continues_the_whole_thread(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core, port = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        first = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie", Message_ID=FIRST)
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        assert (await send_command("127.0.0.1", port, {"op": "mo", "reply_to_last": True, "text": "Tak"}))[
            "ok"
        ]
        await sink.wait(1)
        answer_1 = parsed(sink.messages[0][2])
        assert answer_1["References"] == FIRST
        # Thunderbird's Reply: References = the answer's References and the answer itself.
        reply = answer_to(answer_1, "Świetnie, do zobaczenia")
        first_answer = str(answer_1["Message-ID"]).strip()
        reply.replace_header("References", f"{answer_1['References']} {first_answer}")
        reply["Message-ID"] = REPLY
        assert (await gw.send(reply)).error is None
        await gw.until(lambda: len(core.records) == 2)
        assert (await send_command("127.0.0.1", port, {"op": "mo", "reply_to_last": True, "text": "OK"}))[
            "ok"
        ]
        await sink.wait(2)
        answer_2 = parsed(sink.messages[1][2])
    assert answer_2["In-Reply-To"] == REPLY
    assert str(answer_2["References"]).split() == [FIRST, first_answer, REPLY]


async def test_answers_to_a_mail_without_a_message_id_name_one_id_of_the_gateways(tmp_path: Path) -> None:
    # scripts, printers and monitoring systems send mail with no Message-ID; its answers
    # had no In-Reply-To/References at all and each showed alone. The mail is given one of ours.
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core, port = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        bare = mail(f"601123456@{DOMAIN}", body="Alarm: UPS on battery", subject="UPS")
        assert "Message-ID" not in bare
        assert (await gw.send(bare)).error is None
        await gw.until(lambda: len(core.records) == 1)
        for text in ("Jade", "Juz jestem"):
            assert (await send_command("127.0.0.1", port, answer(text)))["ok"]
        await sink.wait(2)
        answers = [parsed(m[2]) for m in sink.messages[:2]]
        stored = gw.store.db.conn.execute("SELECT header_message_id FROM emails").fetchall()
    assert len(stored) == 1 and stored[0][0], stored
    ours = f"<{stored[0][0]}>"
    assert ours.endswith(f"@{cfg.mail.from_address.rpartition('@')[2]}>"), ours
    for a in answers:
        assert a["In-Reply-To"] == ours and str(a["References"]).split()[0] == ours, dict(a)
