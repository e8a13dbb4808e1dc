"""What the link's `resent` mark on a whole MO is worth in the store (R-3, R-4): the same SMS again
only where nothing better says otherwise. Store-level on a real SQLite file, the mark made by the
link's own `Copies` where it matters how it is made."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from smsc.base import InboundSms
from smsc.mocopies import Copies
from tests.test_store import Clock

PHONE = "+48601000111"
NUMBER = "+48100200300"
VOTE = "KP123 TAK"


def test_a_resent_copy_with_its_own_stamp_is_a_new_sms(tmp_path: Path) -> None:
    # CIMD2 passes no sequence number: the link marks a second identical vote read 2 s after the
    # first, our answer to it still unwritten (a busy loop), as resent. Its 060 stamp is not the
    # first's: the phone sent it again and pays for it again.
    copies = Copies()
    first = InboundSms(source=PHONE, destination=NUMBER, text=VOTE, raw={"smsc_time": "261207073000"})
    second = InboundSms(source=PHONE, destination=NUMBER, text=VOTE, raw={"smsc_time": "261207073002"})
    copies.arrived(first, 100.0, None, None)
    marked = copies.arrived(second, 102.0, None, None)
    assert marked.resent
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    one = store.mo.record_mo("cimd", PHONE, NUMBER, VOTE, 0, None, smsc_time="261207073000", protocol="cimd2")
    clock.t += 2
    two = store.mo.record_mo(
        "cimd", PHONE, NUMBER, VOTE, 0, None, resent=True, smsc_time="261207073002", protocol="cimd2"
    )
    assert one is not None and two is not None
    assert store.mo.redelivery_of(two) is None
    # With the first's stamp it is that SMS delivered again, marked or not.
    clock.t += 2
    three = store.mo.record_mo(
        "cimd", PHONE, NUMBER, VOTE, 0, None, resent=True, smsc_time="261207073000", protocol="cimd2"
    )
    assert three is not None and store.mo.redelivery_of(three) == one


def test_a_resent_copy_is_no_copy_of_the_same_vote_hours_before(tmp_path: Path) -> None:
    # The link marks a copy resent only seconds after the one it saw before it; when that one was
    # not stored (its write failed), the phone's identical vote of 10:00 is not its original at 14:00.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    old = store.mo.record_mo("smpp", PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
    assert old is not None
    store.mo.mark_acked([old], clock.t + 0.01)
    clock.t += 4 * 3600
    new = store.mo.record_mo("smpp", PHONE, NUMBER, VOTE, 0, None, resent=True, protocol="smpp")
    assert new is not None and store.mo.redelivery_of(new) is None
    # Seconds after a stored copy the mark holds, that copy's acknowledgement confirmed or not.
    clock.t += 3
    again = store.mo.record_mo("smpp", PHONE, NUMBER, VOTE, 0, None, resent=True, protocol="smpp")
    assert again is not None and store.mo.redelivery_of(again) == new


def test_the_store_honours_the_mark_at_least_as_long_as_the_link_makes_it() -> None:
    from gateway.store.redelivery import RESENT_WITHIN_SECONDS
    from smsc.mocopies import ACK_LATE_SECONDS

    assert RESENT_WITHIN_SECONDS > ACK_LATE_SECONDS


def _two_binds(tmp_path: Path, name: str) -> tuple[Store, Clock]:
    clock = Clock()
    store = Store.open(tmp_path / name, clock=clock)
    clock.t += 5
    store.mo.link_state("A", up=True, at=clock.t)
    store.mo.link_state("B", up=True, at=clock.t)
    clock.t += 60
    return store, clock


def test_the_smsc_retry_on_a_sibling_bind_is_judged_by_the_first_copy_link(tmp_path: Path) -> None:
    # Two binds of one SMSC account; the vote came on A, whose connection fell right after it (its
    # acknowledgement unconfirmed). The SMSC delivers it again 30 s after A's rebind, on B or on A:
    # the same SMS either way, not mailed nor billed twice.
    for retry_on in ("A", "B"):
        store, clock = _two_binds(tmp_path, f"{retry_on}.sqlite")
        first = store.mo.record_mo("A", PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
        clock.t += 1
        store.mo.link_state("A", up=False, at=clock.t)
        clock.t += 120
        store.mo.link_state("A", up=True, at=clock.t)
        clock.t += 30
        again = store.mo.record_mo(retry_on, PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
        assert again is not None and store.mo.redelivery_of(again) == first, retry_on


def test_on_a_sibling_bind_while_the_first_link_is_down_a_retry_counts_from_its_fall(tmp_path: Path) -> None:
    store, clock = _two_binds(tmp_path, "down.sqlite")
    first = store.mo.record_mo("A", PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
    clock.t += 1
    store.mo.link_state("A", up=False, at=clock.t)
    clock.t += 60
    again = store.mo.record_mo("B", PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
    assert again is not None and store.mo.redelivery_of(again) == first
    # A never came back: the same vote on B an hour on is the phone's new SMS, not a retry held for A.
    clock.t += 3600
    later = store.mo.record_mo("B", PHONE, NUMBER, VOTE, 0, None, protocol="smpp")
    assert later is not None and store.mo.redelivery_of(later) is None
