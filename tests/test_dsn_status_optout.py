"""The bounce of an SMS its phone's STOP ended while it waited says 5.7.1, as the RCPT of an opted-out
number does; an admin's cancel stays 5.0.0.

Defect: the STOP that came after the mail was accepted bounced with `Status: 5.0.0`, which a bounce
processor reads as a failure of unknown cause, where the same refusal at RCPT is `550 5.7.1 …
opted out`. Real daemon (its clock injected), a real SMTP client, the SMPP fake over TCP that sends
the MO "STOP", an aiosmtpd sink as the relay that catches the bounces, `smsgw` as another process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_dsn_wording import configured, dsns, human, recipient_fields
from tests.test_process import smsgw
from tests.test_quiet_hours_view import held_newsletter, window
from tests.test_stop_long_sms import THREE, TWO, held_long_sms, quiet_clock, stop_from, window_opens


async def test_an_sms_its_phone_stopped_while_it_waited_bounces_as_refused_5_7_1(tmp_path: Path) -> None:
    clock, sink_port = quiet_clock(), free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path), clock) as gw:
            await held_long_sms(gw)
            await stop_from(gw, smsc, TWO)
            await stop_from(gw, smsc, THREE)
            bounces, _stored = await window_opens(gw, clock, sink)
    assert smsc.received == []
    for number in (TWO, THREE):
        [report] = bounces[f"+48{number}"]
        fields = recipient_fields(report)
        assert fields["Action"] == "failed" and fields["Status"] == "5.7.1", fields
        assert fields["Diagnostic-Code"] is None  # the gateway's own verdict, not an SMSC's
        assert "the phone's user asked for no more SMS" in human(report)


async def test_an_sms_an_admin_cancelled_bounces_5_0_0(tmp_path: Path) -> None:
    start, end = window(2)
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        path, cfg = configured(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            held = await held_newsletter(gw, smsc, start, end)
            done = await asyncio.to_thread(smsgw, path, "queue", "cancel", str(held))
            assert done.returncode == 0, done.stderr
            await gw.until(lambda: len(dsns(sink)) == 1)
            [(_sender, _rcpts, report)] = dsns(sink)
    fields = recipient_fields(report)
    assert fields["Action"] == "failed" and fields["Status"] == "5.0.0", fields
    assert "cancelled by the administrator" in human(report)
