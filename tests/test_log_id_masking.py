"""Only a phone is masked in a logged id: the run of digits after its last ':' (a CIMD2 id's
"stamp:phone"). Whatever followed the last ':' was, and an SMPP SMSC's id with a ':' in it, or an
e-mail's Message-ID naming an IPv6 host, was cut to "…" in every line: the SMS or mail it named could no
longer be found in the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from gateway.logging import _json_line, _redact
from tests.conftest import DOMAIN, mail
from tests.test_cimd2_report_keys import gateway_and_smsc

MESSAGE_ID = "<CAB=x@[IPv6:2001:db8::1]>"


async def test_a_duplicate_mails_message_id_naming_an_ipv6_host_is_logged_whole(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with gateway_and_smsc(tmp_path) as (gw, _smsc, _sink):
            for _ in range(2):
                await gw.send(mail(f"601569013@{DOMAIN}", "Is the 10:00 slot free?", Message_ID=MESSAGE_ID))
            await gw.until(lambda: any(e["event"] == "smtp.duplicate" for e in logs))
    (duplicate,) = [e for e in logs if e["event"] == "smtp.duplicate"]
    line = json.loads(_json_line(None, "info", dict(duplicate)))
    assert line["message_id"] == MESSAGE_ID.strip("<>"), line  # as the gateway keeps it


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        ("msg:0A1B2C3D", "msg:0A1B2C3D"),  # an SMPP SMSC's id
        ("node1:2:77f3a9", "node1:2:77f3a9"),
        (MESSAGE_ID, MESSAGE_ID),
        ("<1234@host:25>", "<1234@host:25>"),
        ("abc:1234", "abc:1234"),  # four digits: no phone
        ("261205194652:48601123456", "261205194652:…"),
        ("20261206035000:48501234567", "20261206035000:…"),
        ("2612060350:+48501234567", "2612060350:…"),
        (":48501234567", ":…"),
        ("261205194652:48601123456:", "261205194652:…:"),
        ("26:12:05:48501234567", "26:12:05:…"),
    ],
)
def test_only_a_phone_after_an_ids_last_colon_is_masked(value: str, logged: str) -> None:
    for key in ("smsc_id", "message_id", "receipt_id"):
        assert _redact(None, "", {key: value})[key] == logged
