"""A loop between a helpdesk mailbox that acknowledges every mail without marking it automatic and a
phone's auto-reply app: each answer mail drew an acknowledgement within seconds, an SMS to the phone,
which answered again; 12 rounds were 12 SMS, bounded only by the 30 answer mails a phone an hour.
The fourth mail in a row that comes within a minute of the phone's answer mail with the same text
(digits aside) is refused as a loop; a person answering as fast with words of their own is not.
The real daemon, its simulator over SMPP answering as the phone, a real SMTP sink for the relay.
"""

from __future__ import annotations

from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config

AUTO_REPLY = "Prowadze, odpisze pozniej"


async def rounds(tmp_path: Path, texts: list[str]) -> list[str | None]:
    """The user's SMS, then for each text: the phone's auto-reply, and the mailbox's mail back."""
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Zgloszenie", subject="Serwis"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        errors: list[str | None] = []
        for i, text in enumerate(texts, 1):
            command = {"op": "mo", "reply_to_last": True, "text": AUTO_REPLY}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(i)
            sent = len(core.records)
            result = await gw.send(answer_to(parsed(sink.messages[i - 1][2]), text))
            errors.append(None if result.error is None else str(result.error))
            if result.error is None:
                await gw.until(lambda sent=sent: len(core.records) == sent + 1)
    return errors


async def test_the_fourth_fast_identical_round_is_refused_as_a_loop(tmp_path: Path) -> None:
    errors = await rounds(tmp_path, [f"Dziekujemy, zgloszenie {100 + i} przyjete" for i in range(5)])
    assert errors[:3] == [None, None, None], errors
    refused = '(550, b"5.7.1 Not sent: a mail loop with +48601123456'
    assert errors[3] is not None and refused in errors[3], errors


async def test_a_person_answering_as_fast_in_their_own_words_is_not_refused(tmp_path: Path) -> None:
    texts = ["Kiedy bedziesz?", "Ok, czekam", "Daj znac po 15", "Dobrze, to do jutra", "Pa"]
    assert await rounds(tmp_path, texts) == [None] * 5
