"""The records the SMSC side makes for every SMS are made by `smsc.makers.maker`, not by their __init__.

An accepted submit's answer (`smsc.smpp.submits`), a delivery report (`smsc.receipts`) and a
one-part encoding plan (`smsc.encoding`) are each
made from their fields' values in the class's field order: what comes back must be the object the
class's own __init__ makes from the same values (type, fields, equality, hash, still frozen, no
__dict__), so that a field added or moved in a record shows here rather than as a value in the wrong
field at run time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from typing import Any

import pytest

from smsc import encoding, receipts
from smsc.base import DeliveryReport, Outcome, ReportStatus, SubmitResult
from smsc.encoding import Coding, Part, Plan
from smsc.makers import maker
from smsc.smpp import submits

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
]


@pytest.mark.parametrize(("make", "cls", "values"), CASES, ids=[c[1].__name__ for c in CASES])
def test_a_record_made_by_position_is_what_its_init_makes(
    make: Any, cls: type, values: tuple[Any, ...]
) -> None:
    assert make is not cls  # the fast way is taken
    made, built = make(*values), cls(*values)
    assert type(made) is cls and made == built
    assert hash(made) == hash(built)
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
