"""The one hot write of the intake channel, an acceptance and its answer, as marshal's plain values.

Every mail crosses the channel as `("accept", (Acceptance, Limits, notices, Opening))` and comes
back as `(True, AcceptResult)`. Pickled (`gateway.intake_channel`), each of its ten or so records
went through a reducer of Python code and every string through pickle's memo: some 100 k
instructions a mail in the worker, as many again in the daemon. Here each record is the tuple of
its fields, read by generated code (nested records in their list or tuple), and the tree is written
by `marshal`, which knows only the plain types: half the worker's cost. The daemon rebuilds the
records with the channel's makers (`intake_channel._MAKERS`).

Only what comes back equal and of the same types takes this path; anything else (a subclass, a
time zone that is no `ZoneInfo`, a record of a class not named here, bytes that are a bytearray,
which marshal would turn into bytes) raises `Unfit` or marshal's ValueError, and the caller
pickles it as before. The fields are read from the dataclasses at import, so a field added to a
record is carried without a change here.
"""

from __future__ import annotations

import dataclasses
import marshal
from collections.abc import Callable
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from gateway.conversations import Opening
from gateway.smtp.accept import Limits, Notice
from gateway.store.records import Acceptance, AcceptResult, NewMessage, NewPart

ACCEPT = b"A"[0]  # the payload's first octet after the request id: this form of an acceptance
RESULT = b"R"[0]  # of an answer `(True, AcceptResult)`; a pickle's first octet is 0x80


class Unfit(Exception):
    """The value is not one this form carries exactly; it is pickled instead."""


def _unfit() -> NoReturn:
    raise Unfit


def _zone_out(zone: object) -> tuple[Any, ...] | None:
    """A `ZoneInfo` as its own pickle names it (its key, and whether it came from the cache)."""
    if zone is None:
        return None
    if type(zone) is not ZoneInfo:
        raise Unfit
    return zone.__reduce__()[1]  # type: ignore[no-any-return]


def _zone_in(args: tuple[Any, ...] | None) -> ZoneInfo | None:
    return None if args is None else ZoneInfo._unpickle(*args)  # type: ignore[attr-defined]


# The records' fields that hold records, and the container they are in.
_NESTED: dict[tuple[type, str], tuple[str, type]] = {
    (Acceptance, "messages"): ("list", NewMessage),
    (NewMessage, "parts"): ("list", NewPart),
}
_RECORDS: tuple[type, ...] = (NewPart, NewMessage, Acceptance, Limits, Notice, Opening, AcceptResult)


def _generated(makers: dict[type, Callable[..., Any]]) -> dict[str, Any]:
    """`enc_<Class>(record) -> tuple` and `dec_<Class>(tuple) -> record` for each of `_RECORDS`."""
    scope: dict[str, Any] = {"_unfit": _unfit, "_zone_out": _zone_out, "_zone_in": _zone_in}
    source = []
    for cls in _RECORDS:
        name = cls.__name__
        scope[f"_{name}"] = cls
        scope[f"_make_{name}"] = makers[cls]
        outs, ins = [], []
        for i, field in enumerate(dataclasses.fields(cls)):
            nested = _NESTED.get((cls, field.name))
            value = f"o.{field.name}"
            if nested is not None:
                kind, inner = nested
                outs.append(
                    f"{kind}(map(enc_{inner.__name__}, v)) if type(v := {value}) is {kind} else _unfit()"
                )
                ins.append(f"{kind}(map(dec_{inner.__name__}, t[{i}]))")
            elif cls is Limits and field.name == "zone":
                outs.append(f"_zone_out({value})")
                ins.append(f"_zone_in(t[{i}])")
            elif "bytes" in str(field.type):  # marshal writes any buffer as bytes
                outs.append(f"v if type(v := {value}) is bytes else _unfit()")
                ins.append(f"t[{i}]")
            else:
                outs.append(value)
                ins.append(f"t[{i}]")
        fields = "".join(f"        {out},\n" for out in outs)
        check = f"    if type(o) is not _{name}:\n        _unfit()\n"
        source.append(f"def enc_{name}(o):\n{check}    return (\n{fields}    )\n")
        source.append(f"def dec_{name}(t):\n    return _make_{name}({', '.join(ins)})\n")
    exec("".join(source), scope)  # code made above from the records' own field names
    return scope


def codec(makers: dict[type, Callable[..., Any]]) -> tuple[Callable[..., bytes], Callable[[Any], Any]]:
    """(encode, decode) of an acceptance or its answer, given what rebuilds each record."""
    made = _generated(makers)
    enc_acceptance, dec_acceptance = made["enc_Acceptance"], made["dec_Acceptance"]
    enc_limits, dec_limits = made["enc_Limits"], made["dec_Limits"]
    enc_notice, dec_notice = made["enc_Notice"], made["dec_Notice"]
    enc_opening, dec_opening = made["enc_Opening"], made["dec_Opening"]
    enc_result, dec_result = made["enc_AcceptResult"], made["dec_AcceptResult"]
    dumps, loads = marshal.dumps, marshal.loads

    def encode(value: Any) -> bytes:
        """The kind octet and the marshalled tree; Unfit (or marshal's ValueError) for anything else."""
        if type(value) is not tuple or len(value) != 2:
            raise Unfit
        first, rest = value
        if first is True:
            return b"R" + dumps(enc_result(rest))
        if first != "accept" or type(rest) is not tuple or len(rest) != 4:
            raise Unfit
        acceptance, limits, notices, opening = rest
        if type(notices) is not tuple:
            raise Unfit
        return b"A" + dumps(
            (
                enc_acceptance(acceptance),
                None if limits is None else enc_limits(limits),
                tuple(map(enc_notice, notices)),
                None if opening is None else enc_opening(opening),
            )
        )

    def decode(payload: memoryview) -> Any:
        """The value `encode` was given, from its kind octet on."""
        if payload[0] == RESULT:
            return (True, dec_result(loads(payload[1:])))
        acceptance, limits, notices, opening = loads(payload[1:])
        return (
            "accept",
            (
                dec_acceptance(acceptance),
                None if limits is None else dec_limits(limits),
                tuple(map(dec_notice, notices)),
                None if opening is None else dec_opening(opening),
            ),
        )

    return encode, decode
