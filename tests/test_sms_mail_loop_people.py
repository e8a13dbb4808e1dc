"""A person on the phone answering each of a program's mails with the same short word minutes later is
no mail loop: monitoring alerts for one host after another (alike once the digits are set aside), each
acknowledged "ack" by the on-call person two minutes after its SMS, had the fifth alert and every one
after it refused 550 as a loop, also marked Auto-Submitted: auto-generated on an account that sends
such mail (`--auto-generated send`); a dispatcher's job mails, each answered "OK" by the driver, from
the fourth job on. The refusal's advice then sent the monitoring admin to mark the alerts
auto-replied, which has them recorded and never sent.

A loop runs at machine speed on the phone's side: the phone's auto-reply app answers as the SMS
arrives. The same alerts answered within seconds are still refused at the fifth. The real daemon, the
simulator over SMPP answering as the phone, a real SMTP sink as the relay, the daemon's clock injected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_sms_mail_loop import REFUSED, T0, WORDS
from tests.test_two_way import two_way_config

Mail = Callable[[int, bool], dict[str, str]]  # the i-th mail's subject, body, headers; marked or not


def alert(i: int, marked: bool) -> dict[str, str]:
    extra = {"Auto_Submitted": "auto-generated"} if marked else {}
    subject = f"PROBLEM: Disk /var {90 + i}% on db{i + 1}"
    return {"subject": subject, "body": f"Host db{i + 1}, free space {10 - i}%, since 0{i}:15", **extra}


def job(i: int, marked: bool) -> dict[str, str]:
    return {
        "subject": f"Zlecenie {4710 + i}",
        "body": f"Zlecenie {4710 + i} gotowe do odbioru, rampa {i + 1}",
    }


async def acknowledged(
    tmp_path: Path, write: Mail, word: str, answer_after: float, next_after: float, marked: bool = False
) -> list[str | None]:
    """Six mails from one sender to the phone, new mails each (not Replies): the phone answers `word`
    `answer_after` seconds after each SMS, the next mail comes `next_after` seconds after that answer's
    mail. The SMTP error of each mail, None where it went."""
    relay = free_port()
    now = [T0]
    config = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(config, lambda: now[0]) as gw:
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        if marked:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", auto_generated="send"))
        errors: list[str | None] = []
        for i in range(6):
            sent = len(core.records)
            result = await gw.send(mail(f"601123456@{DOMAIN}", **write(i, marked)))
            errors.append(None if result.error is None else str(result.error))
            if result.error is not None:
                continue
            await gw.until(lambda sent=sent: len(core.records) == sent + 1)
            now[0] += answer_after
            command = {"op": "mo", "reply_to_last": True, "text": word}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(i + 1)
            now[0] += next_after
        answered = gw.store.db.conn.execute("SELECT COUNT(answered_message_id) FROM mo").fetchone()[0]
        assert answered == errors.count(None)  # each answer records the SMS it answers
    return errors


@pytest.mark.parametrize(
    ("write", "word", "marked"),
    [(alert, "ack", False), (alert, "ack", True), (job, "OK", False)],
    ids=["alerts", "alerts-auto-generated-sent", "dispatcher"],
)
async def test_a_person_acknowledging_each_mail_minutes_later_is_no_loop(
    tmp_path: Path, write: Mail, word: str, marked: bool
) -> None:
    errors = await acknowledged(tmp_path, write, word, answer_after=120.0, next_after=240.0, marked=marked)
    assert errors == [None] * 6, errors


async def test_the_same_alerts_answered_at_once_by_an_auto_reply_are_still_a_loop(tmp_path: Path) -> None:
    errors = await acknowledged(tmp_path, alert, "ack", answer_after=5.0, next_after=240.0)
    assert errors[:4] == [None] * 4, errors
    assert errors[4] is not None and REFUSED in errors[4] and WORDS in errors[4], errors
