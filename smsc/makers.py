"""Records made from their fields' values without their dataclass __init__, for the hot paths.

A frozen dataclass's __init__ sets each field through `object.__setattr__` (its own __setattr__
refuses), and its slot descriptors' `__set__`, called from Python, cost as much: some 1,000-1,300
instructions a field under callgrind, where a store to a slot of a class without a __setattr__ of
its own costs about what a local's does. The daemon makes several such records for every SMS (the
claimed part, the submit's answer, the delivery report, the encoding plan where the mail is
composed), and the intake channel rebuilds the records of each acceptance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any


def maker(cls: type) -> Callable[..., Any]:
    """What makes an instance of `cls` from its fields' values, in their order (positional only).

    A frozen slotted class's instance is made as one of a twin class with the same slots and no
    __setattr__ of its own, whose attribute stores the interpreter does as cheaply as a local's, and
    is then given its own class (`__class__` assignment, which CPython allows between classes of the
    same slots): NewPart 5.1 k -> 2.9 k instructions, Limits 18.3 k -> 4.4 k. A slotted class that is
    not frozen gets the same stores on itself, without the call of its class and __init__. Either is
    the object __init__ makes as long as __init__ only stores its arguments (no __post_init__, no
    field left out of it) in slots that are the fields alone, which is checked here, at import, as is
    that the instance takes the class; for any other class this is the class itself (its __init__)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    fields = dataclasses.fields(cls)
    if not params.init or hasattr(cls, "__post_init__") or not all(f.init for f in fields):
        return cls  # an __init__ of its own, or one that does more than store its arguments
    names = [f.name for f in fields]
    if tuple(cls.__dict__.get("__slots__", ())) != tuple(names) or not all(
        isinstance(cls.__dict__.get(name), MemberDescriptorType) for name in names
    ):
        return cls  # not slotted, or slotted with more than the fields (`__weakref__`)
    made = type(f"_{cls.__name__}Twin", (), {"__slots__": tuple(names)}) if params.frozen else cls
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_made": made}
    args = ", ".join(f"v{i}" for i in range(len(names)))
    sets = "".join(f"    o.{name} = v{i}\n" for i, name in enumerate(names))
    cast = "    o.__class__ = _cls\n" if params.frozen else ""
    exec(f"def make({args}):\n    o = _new(_made)\n{sets}{cast}    return o\n", scope)
    make: Callable[..., Any] = scope["make"]
    try:
        probe = make(*range(len(names)))
    except TypeError:  # a layout `__class__` assignment refuses
        return cls
    if type(probe) is not cls or [getattr(probe, name) for name in names] != list(range(len(names))):
        return cls
    return make
