"""A CIMD2 message id is the SMSC's 060 stamp and the phone ("261205194652:48601123456"); the log keeps
the stamp and masks the phone. Only a stamp of exactly 12 digits was masked so: an SMSC whose 060 has
14 digits, 10, or no digits at all had the phone of every SMS in the journal, in `cimd2.report`,
`dlr.recorded` and `dlr.unmatched`, where `smsgw phone forget` cannot erase it. (A 14-digit stamp
makes the key of its 12; a submit answered with one that is no time gets no key, and a report with
one is kept unmatched under it: `smsc.cimd2.messages`.)
Against the real daemon (SMTP in, the relay a real sink) and a scripted SMSC over TCP; each line the
SMS's way wrote is rendered as the JSON journal renders it."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from gateway.logging import _json_line, _redact
from smsc.cimd2.times import stamp_digits
from tests.conftest import DOMAIN, mail
from tests.test_cimd2_report_keys import gateway_and_smsc

PHONE = "48601569013"
ID_KEYS = ("smsc_id", "message_id", "receipt_id")


@pytest.mark.parametrize("stamp", ["20261206035000", "2612060350", "abc", "261206:0350"])
async def test_a_receipts_id_is_logged_without_the_phone_whatever_the_smscs_stamp(
    tmp_path: Path, stamp: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with gateway_and_smsc(tmp_path) as (gw, smsc, _sink):
            smsc.hold = True
            await gw.send(mail(f"601569013@{DOMAIN}", "Is the 10:00 slot free?"))
            (submit,) = await smsc.until_submits(1)
            submit.stamp = stamp
            smsc.answer(submit)
            await gw.until(lambda: gw.states() == ["submitted"])
            [(smsc_id,)] = gw.store.db.conn.execute("SELECT smsc_id FROM parts")
            await smsc.report(submit, PHONE, 4)  # delivered
            await gw.until(lambda: any(e["event"] in ("dlr.recorded", "dlr.unmatched") for e in logs))
    shown = stamp_digits(stamp)
    assert smsc_id == (None if shown is None else f"{shown}:{PHONE}")  # the store keeps a key whole
    shown = shown or stamp  # the report's id: the 060's 12 digits, else as written
    with_id = [e for e in logs if any(isinstance(e.get(k), str) and PHONE in e[k] for k in ID_KEYS)]
    assert {e["event"] for e in with_id} >= {"cimd2.report"}, with_id
    assert any(e["event"] in ("dlr.recorded", "dlr.unmatched") for e in with_id), with_id
    for event in with_id:
        line = _json_line(None, "info", dict(event)).decode()
        assert PHONE not in line, line
        assert f'"{shown}:…"' in line, line


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        ("261205194652:48601123456", "261205194652:…"),
        ("20261206035000:48501234567", "20261206035000:…"),
        ("2612060350:+48501234567", "2612060350:…"),
        ("abc:48501234567", "abc:…"),
        ("26:12:05:48501234567", "26:12:05:…"),  # the last ':' is the phone's
        (":48501234567", ":…"),
        ("0a1b2c3d", "0a1b2c3d"),  # an SMPP SMSC's id names no phone
        ("<abc.123@x>", "<abc.123@x>"),
        ("abc:", "abc:"),
    ],
)
def test_what_follows_an_ids_last_colon_is_masked(value: str, logged: str) -> None:
    for key in ID_KEYS:
        assert _redact(None, "", {key: value})[key] == logged
