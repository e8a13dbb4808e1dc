"""`sessioninit._plain`, which keeps its answer per set of attribute names, answers as a look at
each name: an object given a name like a command, hook or mechanism is seen at once, and so is one
that lost it again."""

from __future__ import annotations

from typing import Any

from gateway.smtp import sessioninit
from gateway.smtp.sessioninit import _PREFIXES, _plain


class Bare:
    pass


class OwnDir:
    def __dir__(self) -> list[str]:
        return []


def looked_at(obj: Any) -> bool:
    """`_plain` as it was: each name looked at."""
    if type(obj).__dir__ is not object.__dir__:
        return False
    return not any(name.startswith(_PREFIXES) for name in getattr(obj, "__dict__", ()))


def test_plain_as_each_name_looked_at() -> None:
    obj = Bare()
    steps = ["gate", "refused", "smtp_NOOP", "handle_DATA", "auth_X", "smtpx", "auth", "handle"]
    for _ in range(2):  # the second time from what was kept
        for name in steps:
            setattr(obj, name, 1)
            assert _plain(obj) is looked_at(obj), vars(obj)
        for name in steps:
            delattr(obj, name)
            assert _plain(obj) is looked_at(obj), vars(obj)
    assert _plain(OwnDir()) is False
    assert _plain(1) is True  # no __dict__ at all: no name of its own


def test_kept_name_sets_are_bounded() -> None:
    for i in range(sessioninit._PLAIN_KEPT_MAX * 3):
        obj = Bare()
        setattr(obj, f"field_{i}", i)
        assert _plain(obj)
        setattr(obj, f"smtp_{i}", i)
        assert not _plain(obj)
    assert len(sessioninit._plain_names) <= sessioninit._PLAIN_KEPT_MAX
