"""A second number added to a Reply (Cc) gets the topic; the conversation's phone only what was typed.

The choice used to be made for the whole mail: one number without a conversation, and both phones
got "RE: Re: <topic>: <text>". Over real SMTP against the daemon with its simulator, the answer
mail caught by a real SMTP sink and answered as Outlook does, with the colleague's number in Cc.
"""

from __future__ import annotations

from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config


async def test_a_number_added_to_a_reply_gets_the_topic_the_phone_only_the_answer(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(f"601123456@{DOMAIN}", body="Czy jutro o 10?", subject="Wizyta serwisanta")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak, zapraszam"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        answer = answer_to(parsed(sink.messages[0][2]), "Technik będzie o 10:00")
        answer.replace_header("Subject", f"RE: {answer['Subject']}")  # Outlook stacks its own
        answer["Cc"] = f"601123499@{DOMAIN}"
        rcpts = [str(answer["To"]).split("<")[-1].rstrip(">"), f"601123499@{DOMAIN}"]
        assert (await gw.send(answer, rcpts)).error is None
        await gw.until(lambda: len(core.records) == 3)
        got = {str(r["destination"]): str(r["text"]) for r in core.records[1:]}
        assert got == {
            "+48601123456": "Technik będzie o 10:00",
            "+48601123499": "Wizyta serwisanta: Technik będzie o 10:00",
        }
        # The colleague's number now has a conversation of its own, on the same topic: a Reply to
        # both is an answer in both.
        again = answer_to(parsed(sink.messages[0][2]), "Albo o 11:00")
        assert (await gw.send(again, [rcpts[0], f"601123499@{DOMAIN}"])).error is None
        await gw.until(lambda: len(core.records) == 5)
        assert sorted(str(r["text"]) for r in core.records[3:]) == ["Albo o 11:00"] * 2
