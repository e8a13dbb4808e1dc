"""A phone's answer in a conversation begun on a domain since dropped from `[gateway] domains` comes
From the domain the gateway serves now.

It came From `+48…@sms.old.example` (the conversation's domain), whose replies the gateway refuses
since the domain went (`551 5.1.6 … no longer served`), and each new answer gave staff another such
address. Real mail over SMTP into the daemon, the built-in simulator over SMPP, the answer caught by
a real SMTP relay, the database kept across the two runs.
"""

from __future__ import annotations

from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_answer_from_name import raw_mail, sender_of
from tests.test_two_way import two_way_config

OLD = "sms.old.example"
PHONE = "+48601123430"


async def test_an_answer_on_a_dropped_domain_comes_from_the_served_one(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    old = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"domains": [OLD]})})
    async with smtp_sink(relay) as sink:
        async with running_gateway(old) as gw:
            core = gw.daemon.simulator.core
            to = f"601123430@{OLD}"
            assert (await gw.send(raw_mail(to, msgid="<o1@acme.example>"), [to])).error is None
            await gw.until(lambda: len(core.records) == 1)
            last = core.last_sms()
            assert last is not None
            phone, ours = last
            command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
            await sink.wait(1)
            # While the domain is served, the answer comes from the conversation's domain.
            assert sender_of(sink.messages[0][2])[1] == f"{PHONE}@{OLD}"
        async with running_gateway(cfg) as gw:
            command = {"op": "mo", "source": phone, "destination": ours, "text": "Jeszcze raz tak"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
            await sink.wait(2)
            assert sender_of(sink.messages[1][2])[1] == f"{PHONE}@{DOMAIN}"
