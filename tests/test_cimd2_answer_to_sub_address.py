"""An answer a CIMD2 SMSC delivers to our number written as its sub-address alone reaches its user.

A CIMD2 sender goes out as a sub-address (023) the SMSC appends to the interface's number, the link's
`sender_prefix` (protocols.md 1.5): +48100200300 goes as "200300" under "+48100". An SMSC that names
our number in the MO's 021 the same way, as the simulator does (`send-mo --reply-to-last`), had every
answer recorded "unmatched". The prefix is put back where that makes one of our numbers. The daemon
with its built-in simulator over TCP, and a real SMTP sink for the answer's mail."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed


async def test_an_answer_to_the_sub_address_of_our_number_goes_to_its_user(tmp_path: Path) -> None:
    relay, cimd2, smpp, control = free_port(), free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=cimd2, relay_port=relay, smsc_extra='sender_prefix = "+48100"')
    text = text.replace('type = "smpp"', 'type = "cimd2"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (
            await gw.send(mail(f"601123456@{DOMAIN}", body="Pasuje 10:00?", subject="Termin"))
        ).error is None
        await gw.until(lambda: len(core.records) == 1)
        assert str(core.records[0]["source"]) == "200300"  # the sub-address, as it went on the wire
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", control, command))["ok"]
        await sink.wait(1)
        reply = parsed(sink.messages[0][2])
        assert reply["Subject"] == "Re: Termin (SMS from +48 601 123 456)", reply["Subject"]
        row = gw.daemon.store.db.conn.execute("SELECT destination, state FROM mo").fetchone()
        assert tuple(row) == ("+48100200300", "mailed"), tuple(row)
