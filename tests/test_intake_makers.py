"""The records of a write are rebuilt in the daemon by `smsc.makers.maker`, not by their __init__.

A frozen slotted record is built as an instance of a twin class with the same slots and then given
its own class, a slotted one that is not frozen by stores on an instance made without __init__:
what comes back must be the object __init__ would have made (its type, every field, equal, the same
hash, a frozen one still frozen, without a __dict__, copied, replaced and pickled as any other), and
a class whose layout or __init__ that way would not reproduce keeps its own __init__.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import pytest

from acl.limits import Quota
from gateway.conversations import Opening
from gateway.intake_channel import _CLASSES, _MAKERS
from gateway.smtp.accept import Limits, Notice
from gateway.store.records import Acceptance, AcceptResult, NewMessage, NewPart
from smsc.makers import maker
from tests.test_intake_wire import acceptance, limits, message, notice, opening, part, quota, same


def generated(cls: type, rng: random.Random) -> Any:
    makers = {NewPart: part, Limits: limits, Notice: notice, Opening: opening, Quota: quota}
    makers |= {Acceptance: acceptance, NewMessage: message}
    if cls is AcceptResult:
        return AcceptResult(
            rng.choice([None, 7]), [rng.randrange(99) for _ in range(rng.randrange(3))], 1, None
        )
    return makers[cls](rng)


@pytest.mark.parametrize(
    "cls", [NewPart, AcceptResult, Limits, Notice, Opening, Quota, Acceptance, NewMessage]
)
def test_a_record_rebuilt_from_its_fields_is_what_its_init_makes(cls: type) -> None:
    make = _MAKERS[_CLASSES.index(cls)]
    assert make is not cls  # the fast way is taken for each of them
    rng = random.Random(cls.__name__)
    for _ in range(300):
        value = generated(cls, rng)
        fields = [getattr(value, f.name) for f in dataclasses.fields(cls)]
        back = make(*fields)
        assert same(back, cls(*fields)) and back == value
        assert not hasattr(back, "__dict__")
        try:
            expected = hash(value)
        except TypeError:  # a field of a dict (the opening's domains)
            expected = None
        if expected is not None:
            assert hash(back) == expected
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            with pytest.raises(FrozenInstanceError):
                setattr(back, dataclasses.fields(cls)[0].name, None)
        else:
            with pytest.raises(AttributeError):  # slotted: no field but its own
                back.other = 1
        assert same(copy.copy(back), value) and same(pickle.loads(pickle.dumps(back)), value)
        assert same(dataclasses.replace(back), value)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class _Weak:
    a: int
    b: str


@dataclass(frozen=True, slots=True)
class _Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class _Derived:
    a: int
    b: int = dataclasses.field(init=False, default=0)


@dataclass(frozen=True)
class _Unslotted:
    a: int


@dataclass(slots=True)
class _PlainChecked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True, init=False)
class _OwnInit:
    a: int

    def __init__(self, a: int) -> None:
        object.__setattr__(self, "a", abs(a))


@pytest.mark.parametrize("cls", [_Weak, _Checked, _Derived, _Unslotted, _PlainChecked, _OwnInit])
def test_a_class_the_twin_would_not_reproduce_keeps_its_own_init(cls: type) -> None:
    # A slot beside the fields (`__weakref__`), a __post_init__, a field __init__ leaves out, no
    # slots at all, an __init__ of the class's own: none is rebuilt otherwise than by calling it.
    assert maker(cls) is cls
