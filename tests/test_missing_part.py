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
