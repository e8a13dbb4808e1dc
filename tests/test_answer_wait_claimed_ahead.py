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

from tests.conftest import DOMAIN, STAFF, mail
from tests.test_answer_overtakes_submit_answer import REPLY
from tests.test_answer_wait_overtaken import phone_answers, window_of_one
from tests.test_two_way import BOB


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_while_the_newer_sms_waits_claimed_behind_a_full_window_goes_to_the_sms_the_phone_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with window_of_one(tmp_path, monkeypatch, protocol) as (s, source, destination):
        gw = s.gw
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
        rcpts, answer = await phone_answers(s, source, destination, "Yes, the 10% offer")
        assert rcpts == [STAFF], answer
        assert "ACME offer" in answer and "Other invoice" not in answer
        assert s.mo() == ("mailed", "acme")
