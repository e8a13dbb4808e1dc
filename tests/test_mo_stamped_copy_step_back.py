"""An MO with the SMSC's stamp of an earlier copy whose acknowledgement the SMSC read is that copy delivered
again only within `REPEAT_AFTER_ACK_SECONDS` after the acknowledgement; one whose time reads before it (the
clock stepped back in between, the step not yet seen) is a new SMS, as for an unstamped text: it must not
be dropped, nor its vote left unpaid. The rule is written once (`redelivery.stamped_copy`); the stamped
whole text and the stamped part once took such a copy for the SMSC's.

On a real SQLite file, with the store's injected clock stepped back."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.test_store import Clock

PHONE, NUMBER, STAMP = "+48601333444", "7910", "261207120000"


def test_a_stamped_text_before_its_copys_acknowledgement_is_a_new_sms(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        first = store.mo.record_mo("c1", PHONE, NUMBER, "KP123 A", 0, None, smsc_time=STAMP)
        assert first is not None
        store.mo.mark_acked([first], clock() + 30)  # read 30 s on; the clock then stepped back
        again = store.mo.record_mo("c1", PHONE, NUMBER, "KP123 A", 0, None, smsc_time=STAMP)
        assert again is not None
        assert store.mo.redelivery_of(again) is None
        clock.t += 31  # within REPEAT_AFTER_ACK_SECONDS after it: the SMSC's late repeat
        late = store.mo.record_mo("c1", PHONE, NUMBER, "KP123 A", 0, None, smsc_time=STAMP)
        assert late is not None
        assert store.mo.redelivery_of(late) == again
    finally:
        store.close()


def test_a_stamped_part_before_its_copys_acknowledgement_is_a_new_sms(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    conn = store.db.conn
    try:
        for seq, text in ((1, "KP123 A part one "), (2, "and two")):
            store.mo.record_mo("c1", PHONE, NUMBER, text, 0, (9, 2, seq), smsc_time=STAMP)
        store.mo.mark_acked([r for (r,) in conn.execute("SELECT id FROM mo")], clock() + 30)
        store.mo.record_mo("c1", PHONE, NUMBER, "KP123 A part one ", 0, (9, 2, 1), smsc_time=STAMP)
        (state,) = conn.execute("SELECT state FROM mo ORDER BY id DESC LIMIT 1").fetchone()
        assert state != "duplicate", state
    finally:
        store.close()
