"""A long answer mailed without a part that never came (SPEC R-3.4): the gap reads as a gap.

Part 2 of 3 lost, the timeout joined the rest as "…uszkodzona[…]czka odebrana…": a "[…]" in the
middle of a word reads as the customer's own ellipsis, and nothing said a part was missing. The gap
now names the parts it stands for, set off by spaces, and the mail's note says which did not come.
Through the daemon: its built-in simulator's SMSC delivers the parts over TCP, its own housekeeping
joins them on an injected clock, the mail is caught by a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway import reassembly
from gateway.reassembly import OLD_GAP, TIMEOUT_SECONDS, gap, has_gap, join, merge
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import PHONE, e164, parsed, two_way_config

TEXT = "Paczka przyszła uszkodzona, pudełko zgniecione, a przesyłka odebrana dopiero po tygodniu od nadania."


async def test_a_lost_middle_part_is_marked_as_missing_and_the_note_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [1_800_000_000.0]
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        db = gw.store.db.conn
        core = gw.daemon.simulator.core
        sent = await gw.send(mail(f"601123456@{DOMAIN}", body="Jak przesyłka?", subject="Reklamacja"))
        assert sent.error is None
        await gw.until(lambda: len(core.records) == 1)
        ours = e164(core.records[0]["source"])
        session = core._pick("smpp")
        assert session is not None
        parts = mo_parts(TEXT, ref=77, parts=3)
        for esm, dc, sm in (parts[0], parts[2]):  # part 2 never comes
            fields = dict(address_fields(PHONE, ours), esm_class=esm, data_coding=dc, short_message=sm)
            await session.send_part(tuple(fields.items()))
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == 2
        )
        first, third = (
            t for (t,) in db.execute("SELECT text FROM mo WHERE state = 'segment' ORDER BY concat_seq")
        )
        now[0] += TIMEOUT_SECONDS + 1
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        answer = parsed(raw)
    assert rcpts == [STAFF]
    body = answer.get_content()
    assert body.startswith(f"{first} [part 2 of 3 missing] {third}\n")
    assert OLD_GAP not in body
    noted = " ".join(body.split())
    assert (
        "[Part 2 of 3 of this SMS did not arrive: the text is marked where it belongs;"
        " a part that comes later is mailed on its own]"
    ) in noted


def test_runs_of_missing_parts_are_one_marker_spaced_off_the_text() -> None:
    assert (
        join([(1, "uszkodzona"), (3, "czka odebrana")], 3) == "uszkodzona [part 2 of 3 missing] czka odebrana"
    )
    assert join([(3, "part three")], 3) == "[parts 1–2 of 3 missing] part three"
    assert join([(1, "a "), (4, "d")], 5) == "a  [parts 2–3 of 5 missing] d [part 5 of 5 missing]"
    assert join([(2, "b"), (1, "a")], 2) == "ab"
    assert gap(2, 2, 3) == "[part 2 of 3 missing]" and has_gap(join([(1, "a")], 2)) and not has_gap("a [b] c")


@pytest.mark.parametrize(
    ("first", "later", "total", "whole"),
    [
        ({1: "KP123 long ", 2: "vote "}, {3: "part three"}, 3, "KP123 long vote part three"),
        ({1: "a", 3: "c"}, {2: "b", 4: "d"}, 4, "abcd"),
        ({1: "a "}, {3: " c"}, 4, "a  [part 2 of 4 missing]  c [part 4 of 4 missing]"),
        ({1: "ends in a space "}, {2: "x"}, 2, "ends in a space x"),  # no space of the text lost
    ],
)
def test_texts_joined_apart_merge_back_where_their_gaps_are(
    first: dict[int, str], later: dict[int, str], total: int, whole: str
) -> None:
    pieces = [(join(list(d.items()), total), set(d)) for d in (first, later)]
    assert merge(pieces, total) == whole


def test_texts_stored_with_the_old_marker_still_merge() -> None:
    # Joined before the markers named their parts: "[…]" for each missing part, no spaces.
    assert merge([(f"a{OLD_GAP}c{OLD_GAP}", {1, 3}), (f"{OLD_GAP}b{OLD_GAP}d", {2, 4})], 4) == "abcd"
    assert merge([(f"a{OLD_GAP}", {1}), (join([(2, "b")], 2), {2})], 2) == "ab"
    assert has_gap(f"a{OLD_GAP}")
    # A part whose own text holds a marker: which part is where cannot be told.
    assert merge([(f"a{OLD_GAP}", {1}), (f"{OLD_GAP}b{OLD_GAP}", {2})], 2) is None


def test_the_note_names_each_missing_part() -> None:
    assert reassembly.missing_note(3, {1, 3}).startswith("Part 2 of 3 of this SMS did not arrive:")
    assert reassembly.missing_note(5, {1, 3}).startswith("Parts 2, 4 and 5 of 5 of this SMS did not arrive:")


# ---- a text of the phone user's own that looks like a gap ----------------------------------------

# "[…]" cuts a quotation in Polish; a phone user may also type (or paste back) a marker. Taken for a
# gap, the note named no missing part and failed: the MO ended `failed`, its text mailed to nobody.
OWN_MARKS = ["Jak w umowie: „termin […] do piątku”", "ok [part 1 of 2 missing] ok"]


@pytest.mark.parametrize("text", OWN_MARKS)
async def test_an_answer_whose_own_text_looks_like_a_gap_reaches_its_user_without_a_note(
    tmp_path: Path, text: str
) -> None:
    from smsc.simulator.control import send_command

    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        sent = await gw.send(mail(f"601123456@{DOMAIN}", body="Kiedy termin?", subject="Umowa"))
        assert sent.error is None
        await gw.until(lambda: len(core.records) == 1)
        port = gw.daemon.simulator.control_port
        said = await send_command("127.0.0.1", port, {"op": "mo", "reply_to_last": True, "text": text})
        assert said["ok"]
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        state = gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id DESC LIMIT 1").fetchone()[0]
    body = parsed(raw).get_content()
    assert rcpts == [STAFF] and state == "mailed"
    assert body.startswith(f"{text}\n") and "did not arrive" not in body


@pytest.mark.parametrize("text", OWN_MARKS)
async def test_a_premium_vote_whose_own_text_looks_like_a_gap_reaches_its_client(
    tmp_path: Path, text: str
) -> None:
    from tests.test_premium import CLIENT
    from tests.test_premium import World as PremiumWorld

    w = PremiumWorld(tmp_path)
    w.service()
    await w.mo(f"KP123 {text}")
    assert [(r[0], r[-1]) for r in w.premium_mo()] == [("mailed", text)]
    ((kind, _, rcpt, msg),) = w.outbox()
    assert (kind, rcpt) == ("premium", CLIENT) and "did not arrive" not in msg.get_content()


async def test_a_note_that_fails_leaves_the_answer_mailed_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A note is what the mail says beside the text: a fault in it must not cost the phone user's words.
    from structlog.testing import capture_logs

    from tests.test_conversations import World

    def broken(total: int, seqs: set[int]) -> str:
        raise RuntimeError("a bug in a note")

    monkeypatch.setattr(reassembly, "missing_note", broken)
    w = World(tmp_path)
    w.send(STAFF)
    with capture_logs() as logs:
        await w.mo("Jak w umowie: „termin […] do piątku”")
    assert w.mo_states() == ["mailed"]
    assert [(k, r) for k, r, _ in w.outbox()] == [("reply", STAFF)]
    assert [e["mo"] for e in logs if e["event"] == "mo.note_failed"] == [1]


def test_the_note_of_a_text_that_lacks_no_part_is_none() -> None:
    assert reassembly.missing_note(2, {1, 2}) is None and reassembly.missing_note(1, {1}) is None
