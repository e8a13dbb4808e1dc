"""An acceptance and its answer cross the intake channel in marshal's form (`gateway.intake_wire`).

Every field of every record must come back equal and of the same type as the worker sent it, over
many generated acceptances; whatever that form would not carry exactly (a bytearray, a subclass, a
time zone that is no ZoneInfo, a tuple where a list was) goes pickled and comes back exactly too;
and the daemon's real serving code commits an acceptance sent so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import string
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from acl.limits import Quota
from gateway.conversations import Opening
from gateway.intake_channel import pack_request, unpack_request
from gateway.smtp.accept import Limits, Notice
from gateway.store.records import Acceptance, AcceptResult, NewMessage, NewPart
from tests.conftest import STAFF
from tests.test_intake_channel import DaemonSide, side  # noqa: F401 - the fixture

PICKLED = 0x80  # a pickle's first octet (its PROTO opcode)


class Text(str):
    """A str of another class: marshal refuses it, a pickle keeps its class."""


class Own(Acceptance):
    """A record of a class of its own: it keeps its class only pickled."""

    __slots__ = ()


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (a list is no tuple, a bytearray no bytes)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(a[k], b[k]) and same(k, k2) for k, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, float):
        return a == b and str(a) == str(b)  # -0.0 is not 0.0
    return bool(a == b)


def text(rng: random.Random) -> str:
    alphabet = string.printable + "zażółć gęślą jaźń €😀\u200b\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.3 else value


def number(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, 255, 2**31, 2**63 + 5, -(2**70), rng.randrange(-(10**9), 10**9)])


def seconds(rng: random.Random) -> float:
    return rng.choice([0.0, -0.0, 1.5, 86400.0, 1e300, float("inf"), rng.uniform(0, 2e9)])


def part(rng: random.Random) -> NewPart:
    return NewPart(
        number(rng), rng.randrange(256), rng.randbytes(rng.randrange(0, 160)), rng.randbytes(6), text(rng)
    )


def message(rng: random.Random) -> NewMessage:
    return NewMessage(
        text(rng), text(rng), text(rng), rng.randrange(9), [part(rng) for _ in range(rng.randrange(0, 4))],
        rng.random() < 0.5, text(rng), maybe(rng, seconds(rng)), maybe(rng, text(rng)), rng.random() < 0.5,
        maybe(rng, text(rng)), maybe(rng, text(rng)), maybe(rng, text(rng)),
    )  # fmt: skip


def acceptance(rng: random.Random) -> Acceptance:
    return Acceptance(
        text(rng), maybe(rng, text(rng)), maybe(rng, number(rng)), maybe(rng, number(rng)),
        maybe(rng, text(rng)), maybe(rng, text(rng)), text(rng), text(rng),
        [message(rng) for _ in range(rng.randrange(0, 4))],
        rng.choice([86400, seconds(rng)]), *(maybe(rng, text(rng)) for _ in range(4)),
        maybe(rng, seconds(rng)), *(maybe(rng, text(rng)) for _ in range(3)),
    )  # fmt: skip


def quota(rng: random.Random) -> Quota:
    return Quota(
        text(rng), text(rng), rng.choice(["monthly", "daily"]), text(rng), maybe(rng, number(rng)), text(rng)
    )


def limits(rng: random.Random) -> Limits:
    """Its fields generated from their declared types, so that a field added later is covered too."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Limits):
        kind = str(field.type)
        if kind.startswith("tuple[LimitRow"):  # (owner, scope, monthly, daily)
            values[field.name] = tuple(
                (text(rng), text(rng), maybe(rng, number(rng)), maybe(rng, number(rng)))
                for _ in range(rng.randrange(0, 3))
            )
        elif field.name == "zone":
            values[field.name] = rng.choice([None, ZoneInfo("Europe/Warsaw"), ZoneInfo("UTC")])
        elif kind.startswith("tuple[str"):
            values[field.name] = tuple(text(rng) for _ in range(rng.randrange(0, 4)))
        elif kind.startswith("tuple[int"):
            values[field.name] = tuple(number(rng) for _ in range(rng.randrange(0, 4)))
        elif kind == "int":
            values[field.name] = number(rng)
        elif kind == "float":
            values[field.name] = seconds(rng)
        elif "None" in kind:
            values[field.name] = maybe(rng, text(rng))
        else:
            values[field.name] = text(rng)
    return Limits(**values)


def notice(rng: random.Random) -> Notice:
    return Notice(text(rng), text(rng), text(rng), rng.randbytes(rng.randrange(0, 300)), rng.random() < 0.5)


def opening(rng: random.Random) -> Opening:
    return Opening(
        text(rng), maybe(rng, number(rng)), {text(rng): text(rng) for _ in range(rng.randrange(0, 3))},
        tuple(text(rng) for _ in range(rng.randrange(0, 3))), seconds(rng), text(rng),
        {text(rng): text(rng) for _ in range(rng.randrange(0, 3))},
    )  # fmt: skip


def request(rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    notices = tuple(notice(rng) for _ in range(rng.randrange(0, 3)))
    return ("accept", (acceptance(rng), maybe(rng, limits(rng)), notices, maybe(rng, opening(rng))))


def crossed(value: Any, request_id: int = 7) -> tuple[int, Any]:
    payload = pack_request(request_id, value)
    back_id, back = unpack_request(payload)
    assert back_id == request_id
    assert same(back, value), (back, value)
    return payload[4], back


def test_generated_acceptances_and_answers_come_back_whole_in_the_compact_form() -> None:
    rng = random.Random(15)
    for _ in range(3000):
        kind, back = crossed(request(rng))
        assert kind == ord("A")
        zone = back[1][1].zone if back[1][1] is not None else None
        assert zone is None or zone is ZoneInfo(zone.key)  # the cached zone, as its pickle gives it
        result = AcceptResult(maybe(rng, number(rng)), [number(rng) for _ in range(rng.randrange(0, 4))],
                              number(rng), maybe(rng, text(rng)))  # fmt: skip
        assert crossed((True, result))[0] == ord("R")


def test_what_the_compact_form_would_not_carry_exactly_is_pickled_and_comes_back_exactly() -> None:
    rng = random.Random(16)
    fields = dataclasses.fields(Acceptance)

    def with_message(**changes: Any) -> tuple[str, tuple[Any, ...]]:
        value = request(rng)
        value[1][0].messages = [dataclasses.replace(message(rng), **changes)]
        return value

    odd: list[Any] = [
        with_message(parts=[dataclasses.replace(part(rng), payload=bytearray(b"abc"))]),  # marshal: bytes
        with_message(parts=(part(rng),)),  # a tuple where the list is
        with_message(text=Text("subclass")),
        ("accept", (acceptance(rng), dataclasses.replace(limits(rng), zone=UTC), (), None)),
        ("accept", (acceptance(rng), None, [notice(rng)], None)),  # a list of notices
        ("accept", (Own(*(getattr(acceptance(rng), f.name) for f in fields)), None, (), None)),
        ("accept", (acceptance(rng),)),
        ("info", (STAFF, b"limits")),
        (True, None),
        (False, ("busy", "locked", None)),
        quota(rng),
    ]  # fmt: skip
    for value in odd:
        assert crossed(value)[0] == PICKLED, value


async def test_an_acceptance_sent_in_the_compact_form_is_committed_by_the_daemon(
    side: DaemonSide,  # noqa: F811 - the fixture
) -> None:
    channel = await side.open_channel()
    text = "Meeting moved to 10:00"
    parts = [NewPart(1, 0, text.encode(), b"", text)]
    message = NewMessage("+48601123456", "+48100200300", text, 0, parts, rcpt="601123456@sms.example")
    sent = Acceptance(STAFF, "127.0.0.1", None, None, "m-1@acme.example", "key-1", "Subject", text,
                      [message], 86400.0)  # fmt: skip
    assert pack_request(1, ("accept", (sent, None, (), None)))[4] == ord("A")
    result = await asyncio.wait_for(channel.request("accept", sent, None, (), None), 10)
    assert type(result) is AcceptResult and result.email_id is not None and len(result.message_ids) == 1
    row = side.store.db.conn.execute(
        "SELECT recipient, text FROM messages WHERE id = ?", (result.message_ids[0],)
    ).fetchone()
    assert tuple(row) == ("+48601123456", text)
