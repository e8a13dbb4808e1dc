"""A phone's answer that comes too soon after a newer SMS went to have been read: it answers the older one,
however fast the SMSC answered the newer one's submit (R-3.1).

The answer wait held such an answer only while the SMSC had not answered the newer SMS's submit: with
an SMSC that answers at once the phone's answer to acme's SMS, sent a moment after other's SMS went,
went to other's user (another company, billed to it), with a slow one to acme's. A real daemon with its
built-in SMSC simulator over SMPP and CIMD2, real SMTP in, a real relay sink out, the SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.conversations import reached
from tests.test_answer_overtakes_submit_answer import setup
from tests.test_two_way import BOB

# Long enough that the phone, answering at once, answers within it on a loaded machine; acme's SMS went
# longer than this before other's.
READ_SECONDS = 4.0


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
@pytest.mark.parametrize("delay", [0.0, 12.0])
async def test_an_answer_at_once_after_a_newer_sms_goes_to_the_sms_the_phone_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str, delay: float
) -> None:
    # acme's SMS went seconds ago; other's reaches the SMSC, which answers its submit at once (or 12 s
    # late), and the phone answers acme's at once: to acme either way, on acme's bill.
    async with setup(tmp_path, monkeypatch, protocol) as s:
        monkeypatch.setattr(reached, "REPLY_SECONDS", READ_SECONDS)
        await s.acme_delivered()
        await asyncio.sleep(READ_SECONDS + 0.5)
        s.delay_submit_answers(delay)
        await s.texts(BOB, "Other invoice 12 due")
        await s.answer_goes_to_acme("Yes please, I take the 10% offer")


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_at_once_to_the_only_sms_goes_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # The phone got no other SMS from the number: the answer is to the one it got, however soon.
    async with setup(tmp_path, monkeypatch, protocol) as s:
        monkeypatch.setattr(reached, "REPLY_SECONDS", READ_SECONDS)
        s.delay_submit_answers(0.0)
        await s.texts(BOB, "Other invoice 12 due")
        await s.gw.until(lambda: s.gw.states() in (["submitted"], ["delivered"]))
        rcpts, body = await s.phone_answers("Invoice 12 paid", at_once=True)
        assert rcpts == [BOB], (rcpts, body)
        assert "Other invoice 12 due" in body
        assert s.mo() == ("mailed", "other")
