"""The link writes a part's submit_sm by position (`smsc.smpp.pdu.submit_values`,
`smsc.smpp.codec.encode_submit`), not through `encode_sm`'s keywords: the bytes, and the error for
what cannot be sent, must be the ones `encode_sm(SUBMIT_SM, seq, **submit_fields(...))` gives, and
smpplib's. Checked over crafted and random parts and link settings, and on what the simulator reads
from a running link."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from smsc.base import OutboundSms, Outcome
from smsc.settings import LinkSettings
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.codec import SUBMIT_SM, encode_sm, encode_submit
from smsc.smpp.pdu import submit_fields, submit_values
from tests.fakes.smsc import HappySMSC
from tests.test_smpp_codec import SEQ, smpplib_bytes
from tests.test_smsc_link_defects import smpp_link

SEND_ERRORS = (UnicodeError, ValueError, struct.error)  # what the link turns into an outcome


def by_keywords(seq: int, sms: OutboundSms, cfg: LinkSettings) -> bytes | tuple[str, str]:
    try:
        return encode_sm(SUBMIT_SM, seq, **submit_fields(sms, cfg))
    except SEND_ERRORS as exc:
        return (type(exc).__name__, str(exc))


def by_position(seq: int, sms: OutboundSms, cfg: LinkSettings) -> bytes | tuple[str, str]:
    try:
        return encode_submit(seq, *submit_values(sms, cfg))
    except SEND_ERRORS as exc:
        return (type(exc).__name__, str(exc))


def part(**kw: Any) -> OutboundSms:
    values: dict[str, Any] = dict(part_id=1, source="ACME", destination="+48601123456", data_coding=0,
                                  payload=b"Hello", text="Hello")  # fmt: skip
    return OutboundSms(**{**values, **kw})


UDH = bytes((5, 0, 3, 0x2A, 2, 1))
CRAFTED = {
    "alphanumeric": part(),
    "e164 source": part(source="+48100200300"),
    "short code": part(source="7155"),
    "national source": part(source="601123456789"),
    "source past 20 characters": part(source="A" * 30),
    "source outside latin-1": part(source="Zażółć"),
    "empty source": part(source=""),
    "udh and ucs2": part(data_coding=8, payload="ą".encode("utf-16-be"), udh=UDH),
    "validity": part(validity=datetime(2026, 12, 7, 10, 0, 59, 999_999, tzinfo=UTC)),
    "validity in another zone": part(
        validity=datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    ),
    "no report wanted": part(want_report=False),
    "254 octets": part(payload=b"x" * 248, udh=UDH),
    "255 octets": part(payload=b"x" * 249, udh=UDH),
    "empty payload": part(payload=b"", text=""),
    "destination not e164": part(destination="+48 601"),
    "destination without +": part(destination="48601123456"),
    "destination of other digits": part(destination="+٤٨٦٠١"),
    "data coding past a byte": part(data_coding=300),
    "data coding 0 with NUL": part(payload=b"\x00@x\x1b\x65"),
}
SETTINGS = {
    "gsm": LinkSettings(name="op", port=1),
    "latin1": LinkSettings(name="op", port=1, dc0_charset="latin1"),
    "ton/npi set": LinkSettings(name="op", port=1, source_ton=5, source_npi=0),
    "ton past a byte": LinkSettings(name="op", port=1, source_ton=256),
    "npi negative": LinkSettings(name="op", port=1, source_npi=-1),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_parts_give_the_same_bytes_or_error(case: str, setting: str) -> None:
    sms, cfg = CRAFTED[case], SETTINGS[setting]
    assert by_position(SEQ, sms, cfg) == by_keywords(SEQ, sms, cfg)


def test_random_parts_give_the_same_bytes_or_error() -> None:
    rng = random.Random(20261206)

    def noise() -> str:
        return "".join(rng.choices("0123456789+ AZaz@é€ąΔ\x00", k=rng.randrange(25)))

    compared = errors = 0
    for _ in range(3_000):
        udh = (
            bytes(rng.randrange(256) for _ in range(rng.choice((0, 0, 6, 7)))) if rng.random() < 0.5 else b""
        )
        sms = OutboundSms(
            part_id=rng.randrange(1, 10**9),
            source=rng.choice(["ACME", "+48100200300", "7155", noise()]),
            destination=rng.choice(["+48601123456", "48601", "+" + noise()]),
            data_coding=rng.choice((0, 0, 8, 4, 3, 256)),
            payload=bytes(rng.randrange(128) for _ in range(rng.choice((0, 10, 160, 248, 249, 260)))),
            text="",
            udh=udh,
            validity=rng.choice([None, datetime.fromtimestamp(rng.uniform(1.7e9, 4.1e9), UTC)]),
            want_report=rng.random() < 0.8,
        )  # fmt: skip
        cfg = rng.choice(list(SETTINGS.values()))
        seq = rng.randrange(1, 0x7FFFFFFF)
        got, want = by_position(seq, sms, cfg), by_keywords(seq, sms, cfg)
        assert got == want, (sms, cfg)
        compared += 1
        errors += isinstance(want, tuple)
    assert compared == 3_000 and 0 < errors < compared  # both paths, the written and the refused, were met


def test_a_part_is_smpplibs_submit_sm() -> None:
    sms = part(data_coding=8, payload="ą".encode("utf-16-be"), udh=UDH,
               validity=datetime(2025, 1, 1, 12, tzinfo=UTC))  # fmt: skip
    cfg = SETTINGS["gsm"]
    assert encode_submit(SEQ, *submit_values(sms, cfg)) == smpplib_bytes(
        "submit_sm", **submit_fields(sms, cfg)
    )


async def test_the_simulator_reads_the_bytes_encode_sm_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a running link writes, as the simulator received it, PDU for PDU."""
    received: list[bytes] = []
    dispatch = SmppSession.dispatch

    async def spy(self: SmppSession, raw: bytes) -> None:
        if struct.unpack_from(">I", raw, 4)[0] == SUBMIT_SM:
            received.append(raw)
        await dispatch(self, raw)

    monkeypatch.setattr(SmppSession, "dispatch", spy)
    parts = [CRAFTED[c] for c in ("alphanumeric", "e164 source", "short code", "udh and ucs2", "validity",
                                  "validity in another zone", "no report wanted", "254 octets")]  # fmt: skip
    async with HappySMSC() as smsc, smpp_link(smsc.port) as (link, _):
        for sms in parts:
            assert (await link.submit(sms)).outcome is Outcome.ACCEPTED
        await smsc.wait_for(len(parts))
        cfg = link.cfg
    assert len(received) == len(parts)
    for raw, sms in zip(received, parts, strict=True):
        seq = struct.unpack_from(">I", raw, 12)[0]
        assert raw == encode_sm(SUBMIT_SM, seq, **submit_fields(sms, cfg))
