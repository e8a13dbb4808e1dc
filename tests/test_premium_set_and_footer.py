"""What a client and the operator are told matches what is done (R-4.5): `premium set --email` says
that the old address left the reply list (the client answering from it is refused afterwards), and
the premium SMS's mail says how long an answer may be as the account sends it: 160 characters
with Polish letters made plain when it transliterates, not "70 with Polish letters".

Against real peers, as tests/test_premium_answer_rules.py: the CLI on the daemon's database, the
mail read at a real SMTP sink, the answer sent over SMTP and the SMS seen at the simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, reply_to, smtp

UCS2 = "160 characters, 70 with Polish letters or an emoji"
PLAIN = "160 characters, Polish letters sent without their marks; 70 with an emoji"


async def test_set_email_says_the_reply_list_it_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with premium(tmp_path) as w:
        capsys.readouterr()
        await w.cli("premium", "set", "KP123", "--email", "glosy@acme.pl")
        out = capsys.readouterr().out
        assert f"reply list: glosy@acme.pl (was {CLIENT})" in out
        assert f"no longer may answer: {CLIENT}" in out
        await w.cli("premium", "set", "KP123", "--reply-acl", "glosy@acme.pl")
        assert "reply list: glosy@acme.pl (unchanged)" in capsys.readouterr().out


@pytest.mark.parametrize(("transliterate", "said"), [("on", PLAIN), ("off", UCS2)])
async def test_the_mails_footer_says_how_long_an_answer_may_be(
    tmp_path: Path, transliterate: str, said: str
) -> None:
    async with premium(tmp_path) as w:
        await w.cli("account", "set", "acme", "--transliterate", transliterate)
        vote = await w.vote()
        footer = vote.get_content()
        assert f"the phone gets one free SMS ({said})." in footer
        # As it is sent: 100 Polish letters go whole when made plain, cut to 70 when not.
        assert (await smtp(w.gw.port, *reply_to(vote, "ż" * 100))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert len(str(w.sent()[0]["text"])) == (100 if transliterate == "on" else 70)
