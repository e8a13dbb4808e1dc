"""An MO whose SMSC left its source address empty, mailed to the fallback address: its title said
"SMS from  to +48100200300 (no conversation)", as if a word were missing. It says the number is
unknown now, and a reply to that mail is still known for the gateway's own title.

The gateway against a fake SMSC over TCP, its mail to a relay sink."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.smtp.subjects import sms_subject
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_two_way import parsed

OPS = "ops@gw.example"
SENDER = "+48100200300"  # the acme account's sender in tests.conftest


async def test_an_mo_without_a_source_is_titled_from_an_unknown_number(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        extra = f'\n[replies]\nfallback_address = "{OPS}"\n'
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=relay, extra=extra)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)):
            await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
            assert await smsc.inject_mo("", SENDER, "who is this") == 1
            await sink.wait(1)
    [(_, rcpts, raw)] = sink.messages
    subject = str(parsed(raw)["Subject"])
    assert rcpts == [OPS] and subject == f"SMS from an unknown number to {SENDER} (no conversation)"
    assert sms_subject(f"RE: {subject}") == ""  # our own title, not put on the phone
