"""The records made for every SMS are made by `smsc.makers.maker`, not by their __init__.

An accepted submit's answer (`smsc.smpp.submits`), a delivery report (`smsc.receipts`), a one-part
encoding plan (`smsc.encoding`), a claimed part (`gateway.store.queue`), the accepting write's answer
(`gateway.store.accepting`) and the SMS a claimed part is handed to its link as (`gateway.outbound`)
are each made from their fields' values in the class's field order: what comes back must be the
object the class's own __init__ makes from the same values (type, fields, equality, hash, still
frozen, no __dict__), so that a field added or moved in a record shows here rather than as a value
in the wrong field at run time. The store's records are also checked as a real SQLite file gives them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway import outbound
from gateway.store import accepting, claimreads, queue
from gateway.store.db import Store
from gateway.store.partnotes import MAYBE_SENT_NOTES
from gateway.store.records import AcceptResult, ClaimedPart
from smsc import encoding, receipts
from smsc.base import DeliveryReport, OutboundSms, Outcome, ReportStatus, SubmitResult
from smsc.encoding import Coding, Part, Plan
from smsc.makers import maker
from smsc.smpp import submits
from tests.test_store import Clock, acceptance

CASES: list[tuple[Any, type, tuple[Any, ...]]] = [
    (
        receipts._report,
        DeliveryReport,
        (
            "1a2b",
            ReportStatus.FAILED,
            "UNDELIV err:001",
            "+48600100200",
            datetime(2026, 5, 1, tzinfo=UTC),
            "id:1",
        ),
    ),
    (submits._accepted, SubmitResult, (Outcome.ACCEPTED, "1a2b", *submits._ACCEPTED_REST)),
    (encoding._made_part, Part, ("Hi", b"Hi", 2)),
    (
        encoding._made_plan,
        Plan,
        (Coding.GSM7, (Part("Hi", b"Hi", 2),), False, False, "", None, False, False, "Hi"),
    ),
    (
        queue._claimed,
        ClaimedPart,
        (7, 3, 1, 2, "+48600100200", "ACME", 0, b"Hi", b"", "Hi", 1_700_000_000.5, "smsc-a", True),
    ),
    (accepting._result, AcceptResult, (12, [40, 41], 1, None)),
    (
        outbound._outbound,
        OutboundSms,
        (
            7,
            "ACME",
            "+48600100200",
            8,
            b"\x00H",
            "H",
            b"\x05\x00\x03\x01\x02\x01",
            datetime(2026, 5, 1, tzinfo=UTC),
            True,
        ),
    ),
]


def _hash(record: object) -> object:
    """Its hash, or the error hashing it raises (a record holding a list cannot be hashed)."""
    try:
        return hash(record)
    except TypeError as exc:
        return str(exc)


@pytest.mark.parametrize(("make", "cls", "values"), CASES, ids=[c[1].__name__ for c in CASES])
def test_a_record_made_by_position_is_what_its_init_makes(
    make: Any, cls: type, values: tuple[Any, ...]
) -> None:
    assert make is not cls  # the fast way is taken
    made, built = make(*values), cls(*values)
    assert type(made) is cls and made == built
    assert _hash(made) == _hash(built)
    assert [getattr(made, f.name) for f in dataclasses.fields(cls)] == list(values)
    assert not hasattr(made, "__dict__")
    with pytest.raises(FrozenInstanceError):
        setattr(made, dataclasses.fields(cls)[0].name, None)
    assert dataclasses.replace(made) == built


def test_an_accepted_submit_answer_has_every_other_field_at_its_default() -> None:
    fields = dataclasses.fields(SubmitResult)
    assert all(f.default_factory is dataclasses.MISSING for f in fields)
    made = submits._accepted(Outcome.ACCEPTED, "77", *submits._ACCEPTED_REST)
    assert made == SubmitResult(Outcome.ACCEPTED, message_id="77")


def test_a_class_whose_init_does_more_keeps_it() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    assert maker(Checked) is Checked


@pytest.mark.parametrize("few_due", [64, 1], ids=["read-whole", "returning"])
async def test_the_store_claims_and_accepts_the_records_their_init_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, few_due: int
) -> None:
    # The claim's rows and the accepting write's ids, as a real SQLite file gives them: the columns a
    # claim reads must be the claimed part's fields in their order, its `maybe_sent` a bool, whether
    # the claim read its few due parts whole or took them by UPDATE … RETURNING (more than FEW_DUE).
    monkeypatch.setattr(claimreads, "FEW_DUE", few_due)
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    with store.queue.transaction():
        result = store.queue.insert_email(acceptance(["+48601000001", "+48601000002"], parts=2))
    assert type(result) is AcceptResult and result.email_id is not None
    assert result == AcceptResult(result.email_id, result.message_ids, duplicates=0)
    first = result.message_ids[0]
    store.db.conn.execute(
        "UPDATE parts SET error = ?, state = 'deferred' WHERE message_id = ? AND seq = 2",
        (MAYBE_SENT_NOTES[0], first),
    )
    claimed = store.queue.claim_due(10)
    assert len(claimed) == 4 and [p.maybe_sent for p in claimed] == [False, True, False, False]
    for part in claimed:
        built = ClaimedPart(*[getattr(part, f.name) for f in dataclasses.fields(ClaimedPart)])
        assert type(part) is ClaimedPart and part == built and hash(part) == hash(built)
        assert type(part.maybe_sent) is bool and not hasattr(part, "__dict__")
        sms = outbound.outbound(part)
        assert type(sms) is OutboundSms and sms == OutboundSms(
            part_id=part.id,
            source=part.source,
            destination=part.destination,
            data_coding=part.data_coding,
            payload=part.payload,
            text=part.text,
            udh=part.udh,
            validity=datetime.fromtimestamp(part.expires_at, UTC),
        )
    store.close()
