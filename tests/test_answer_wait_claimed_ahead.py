"""An answer judged by when the SMS it may answer was handed to its link (R-3.1), not by its claim.

The dispatcher claims parts ahead of its links' windows (`gateway.claimahead`): behind a slow SMSC a part
waits claimed for seconds before it goes. Counted from its claim, an answer to the older SMS that came
before the newer one had even reached the SMSC waited for it, and went to its user, of another company,
quoting their SMS and on their bill.

A real daemon with its built-in SMSC simulator over SMPP and CIMD2 (a window of one SMS, its submit answers
delayed), real SMTP in, a real relay sink out, the SQLite file.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_while_the_newer_sms_waits_claimed_behind_a_full_window_goes_to_the_sms_the_phone_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
    port = free_port()
    cfg = patient(own_config(tmp_path, protocol, port))
    cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update={"window": 1})]})
    async with smtp_sink(port) as sink, running_gateway(cfg) as gw:
        s = Setup(gw, sink, protocol)
        await s.texts(STAFF, "ACME offer: 10% off")
        await gw.until(lambda: gw.states() == ["delivered"])
        source, destination = s.core.last_sms()  # the phone's answer to acme's SMS goes back by these
        s.delay_submit_answers(DELAY)
        # acme's SMS to another phone fills the window; BOB's to the phone is claimed ahead of it.
        elsewhere = mail(f"601333333@{DOMAIN}", body="ACME other", subject=f"From {STAFF}")
        elsewhere.replace_header("From", STAFF)
        assert (await gw.send(elsewhere, sender=STAFF)).error is None
        msg = mail(f"601222222@{DOMAIN}", body="Other invoice 12 due", subject=f"From {BOB}")
        msg.replace_header("From", BOB)
        assert (await gw.send(msg, sender=BOB)).error is None
        conn = gw.store.db.conn
        part = "SELECT state, claimed_at FROM parts WHERE message_id = 3"
        await gw.until(lambda: conn.execute(part).fetchone()[0] == "active")
        claimed = conn.execute(part).fetchone()[1]
        await gw.until(lambda: gw.store.clock() > claimed + REPLY + 0.5)  # long enough, had it gone
        # The phone answers acme's SMS before BOB's has reached the SMSC: it cannot have BOB's.
        assert len(s.core.records) == 2
        command = {"op": "mo", "source": source, "destination": destination, "text": "Yes, the 10% offer"}
        command["protocol"] = protocol
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: bool(answers(sink)), timeout=3 * DELAY)
        [(rcpts, answer)] = answers(sink)
        assert rcpts == [STAFF], answer.get_content()
        assert "ACME offer" in answer.get_content() and "Other invoice" not in answer.get_content()
        assert s.mo() == ("mailed", "acme")
        s.delay_submit_answers(
            0.0
        )  # BOB's, still held by the link, is answered at once: the stop ends sooner
