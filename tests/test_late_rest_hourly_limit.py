"""The late rest of a long answer no user gets is held to the hourly limit as its first parts were
(`[replies] mails_per_phone_per_hour`, R-3.4): counted with them, and kept while they are kept.

The rest of an answer whose first parts reached their user follows them: never counted again, kept
while they are. One whose first parts went to the fallback address (their user gone) is matched as
an answer anew, and went through the limit as a second answer: with the first parts the phone's
last allowed answer of the hour, the rest was kept and came an hour later in a mail of its own. And
when the first parts were kept, a rest that came once the hour had passed went at once, before them.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping joining the parts on an injected clock, the SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from tests.answer_world import World, world
from tests.conftest import STAFF
from tests.test_kept_answers import answer, states
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK

ONE_AN_HOUR = {"mails_per_phone_per_hour": 1}


async def joined(w: World, seq: int, whole: int) -> None:
    """Part `seq` of the phone's long answer, joined by the timeout into the `whole`th whole MO."""
    await w.part(seq)
    await w.gw.until(lambda: w.segments() == 1)
    w.now[0] += TIMEOUT_SECONDS + 1
    await w.gw.until(lambda: len(states(w.gw)) == whole)


async def test_the_late_rest_of_an_answer_sent_to_the_fallback_is_not_counted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, monkeypatch, replies=ONE_AN_HOUR) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await readd(w.gw, STAFF, "other")  # its user gone: the answer goes to the fallback
        await joined(w, 1, 1)  # the phone's one answer this hour
        w.now[0] += 60
        await joined(w, 2, 2)
        assert states(w.gw) == ["fallback", "fallback"]  # the rest at once, not kept for an hour
        await w.gw.until(lambda: len(w.answers()) == 2)
        assert [rcpts for rcpts, _ in w.answers()] == [[FALLBACK], [FALLBACK]]
        assert "podpisze jutro rano" in w.answers()[1][1].get_content()


async def test_the_late_rest_of_a_kept_answer_no_user_gets_is_kept_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, monkeypatch, replies=ONE_AN_HOUR) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await readd(w.gw, STAFF, "other")
        await answer(w.gw, "Ok")  # to the fallback: the phone's one answer this hour
        w.now[0] += 60
        await joined(w, 1, 2)
        assert states(w.gw) == ["fallback", "throttled"]
        # Joined once the hour of the first answer has passed, but within the hour of the first parts
        # (their mail of kept answers is not due yet).
        w.now[0] += 3100
        await joined(w, 2, 3)
        assert states(w.gw) == ["fallback", "throttled", "throttled"]  # not mailed before its start
        assert len(w.answers()) == 1


async def test_the_rest_kept_with_first_parts_whose_user_left_goes_in_their_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first parts kept (hourly limit) in their user's conversation, the user gone before the rest
    # came: the rest was kept with no conversation, and the kept answers went in two mails, the
    # rest's saying that no conversation took it.
    async with world(tmp_path, monkeypatch, replies=ONE_AN_HOUR) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await answer(w.gw, "Ok")  # mailed to its user: the phone's one answer this hour
        w.now[0] += 60
        await joined(w, 1, 2)  # the long answer's first parts: kept
        await readd(w.gw, STAFF, "other")  # the user leaves
        w.now[0] += 60
        await joined(w, 2, 3)
        assert states(w.gw) == ["mailed", "throttled", "throttled"]
        kept_in = w.gw.store.db.conn.execute(
            "SELECT DISTINCT conversation_id FROM mo WHERE id > 1 AND state NOT IN ('segment', 'joined')"
        ).fetchall()
        w.now[0] += 2 * 3600  # the kept answers' mail is due
        await w.gw.until(lambda: "throttled" not in states(w.gw), timeout=30)
        await w.gw.until(lambda: len(w.answers()) >= 2, timeout=30)
    kept = w.answers()[1:]
    assert len(kept) == 1, [msg.get_content()[:300] for _, msg in kept]
    assert kept[0][0] == [FALLBACK]
    assert "podpisze jutro rano" in kept[0][1].get_content()
    assert len(kept_in) == 1 and kept_in[0][0] is not None, kept_in  # both in the first parts' conversation
