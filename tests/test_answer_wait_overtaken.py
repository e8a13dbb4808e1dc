"""An answer judged by when its link wrote the submit of the SMS it may answer (R-3.1), not by when the
dispatcher handed the part over.

A CIMD2 link holds a long SMS's next part until its phone's second is up (`smsc.cimd2.spacing`); a part
to another phone handed after it takes the free window place and goes first. Counted by the order the
parts were handed, that part stayed "waiting in the link" for its whole time on the wire: an answer from
its phone did not wait for its submit's answer and went at once to the older SMS's user, of another
company. An SMPP link writes each submit as it is handed, so the part handed first goes first.

A real daemon with its built-in SMSC simulator over SMPP and CIMD2 (a window of one SMS, its submit answers
delayed), real SMTP in, a real relay sink out, the SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.conversations import reached
from smsc.simulator.control import send_command
from tests.answer_world import answers
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_overtakes_submit_answer import DELAY, REPLY, Setup, patient
from tests.test_own_numbers import own_config
from tests.test_two_way import BOB

PHONE, OTHER_PHONE = "+48601222222", "+48601333333"


@asynccontextmanager
async def window_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> AsyncIterator[tuple[Setup, str, str]]:
    """The daemon on one link with a window of one SMS, acme's SMS to the phone delivered, the SMSC's
    answers to submits `DELAY` s late from then on: the set-up, and the source and destination the
    phone's answer to acme's SMS goes back by. At the end the link's session is dropped: the stop then
    puts back what its link holds instead of waiting out the answers still delayed (a `DELAY` a test)."""
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
    port = free_port()
    cfg = patient(own_config(tmp_path, protocol, port))
    cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update={"window": 1})]})
    async with smtp_sink(port) as sink, running_gateway(cfg) as gw:
        s = Setup(gw, sink, protocol)
        await s.acme_delivered()
        source, destination = s.core.last_sms()
        s.delay_submit_answers(DELAY)
        yield s, source, destination
        drop = {"op": "drop", "protocol": protocol}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, drop))["ok"]


async def phone_answers(s: Setup, source: str, destination: str, text: str) -> tuple[list[str], str]:
    """The phone's answer to acme's SMS: the recipients and text of the one mail that brings it."""
    command = {"op": "mo", "source": source, "destination": destination, "text": text, "protocol": s.protocol}
    assert (await send_command("127.0.0.1", s.gw.daemon.simulator.control_port, command))["ok"]
    await s.gw.until(lambda: bool(answers(s.sink)), timeout=3 * DELAY)
    [(rcpts, answer)] = answers(s.sink)
    return rcpts, answer.get_content()


@pytest.mark.parametrize(
    ("protocol", "third", "answered"),
    [
        ("cimd2", PHONE, BOB),  # BOB's overtook the long SMS's part 2: on the wire, the answer waits for it
        ("smpp", OTHER_PHONE, STAFF),  # part 2 went: BOB's, not written yet, cannot be on the phone
    ],
)
async def test_an_answer_waits_for_the_sms_its_link_wrote_not_the_one_handed_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str, third: str, answered: str
) -> None:
    async with window_of_one(tmp_path, monkeypatch, protocol) as (s, source, destination):
        gw = s.gw
        # acme's 2-part SMS to another phone, its first part on the wire; then BOB's to the phone.
        long = mail(f"601333333@{DOMAIN}", body="ACME other " + "x" * 200, subject=f"From {STAFF}")
        long.replace_header("From", STAFF)
        assert (await gw.send(long, sender=STAFF)).error is None
        await gw.until(lambda: len(s.core.records) == 2)
        msg = mail(f"601222222@{DOMAIN}", body="Other invoice 12 due", subject=f"From {BOB}")
        msg.replace_header("From", BOB)
        assert (await gw.send(msg, sender=BOB)).error is None
        await gw.until(lambda: len(s.core.records) == 3, timeout=2 * DELAY)  # the first part answered
        assert s.core.records[-1]["destination"] == third
        went = gw.store.clock()
        await gw.until(lambda: gw.store.clock() > went + REPLY + 0.5)  # the phone could have read it
        rcpts, answer = await phone_answers(s, source, destination, "Got it")
        assert rcpts == [answered], answer
