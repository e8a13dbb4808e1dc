"""The SMSC's 901 text may quote the phone ("Destination 48601000002 barred"). The CIMD2 adapter's own
line masked it, but the gateway's lines about the same refusal (`mt.failed`, `mt.deferred`,
`message.state`) logged it whole at INFO, a number `smsgw phone forget` cannot erase from the
journal. The part and the bounce keep the SMSC's words whole. Against the real daemon and a
scripted SMSC over TCP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_general_error import next_submit

NUMBER = "601000002"


def leaks(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines above DEBUG that show the number, in whatever form (its digits in a row)."""
    digits = lambda entry: "".join(ch for ch in str(entry) if ch.isdigit())  # noqa: E731
    return [e for e in logs if e.get("log_level") != "debug" and NUMBER in digits(e)]


@pytest.mark.parametrize(("code", "event"), [(300, "mt.failed"), (999, "mt.deferred")])
async def test_the_smscs_words_quoting_the_phone_reach_no_log_line(
    tmp_path: Path, code: int, event: str
) -> None:
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port)
        cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="test", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                conn = await peer.accept()
                await conn.login()
                await gw.send(mail(f"{NUMBER}@{DOMAIN}", "Hello, barred"))
                submit = await next_submit(conn)
                words = (P.ERROR_TEXT, "Destination 48601000002 barred")
                conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, code), words))
                await gw.until(lambda: any(e["event"] == event for e in logs))
                if code == 300:
                    await gw.until(lambda: any(e["event"] == "message.state" for e in logs))
                    await sink.wait(1)
                    assert b"Destination 48601000002 barred" in sink.messages[0][2]  # the bounce: whole
                [(reason,)] = gw.store.db.conn.execute("SELECT error FROM parts")
    assert reason == f"CIMD2 900:{code} Destination 48601000002 barred"  # the part: whole
    assert leaks(logs) == []
    (line,) = [e for e in logs if e["event"] == event]
    assert line["error"] == f"CIMD2 900:{code} Destination <11 chars> barred", line
    if code == 300:
        (state,) = [e for e in logs if e["event"] == "message.state"]
        assert state["reason"] == "CIMD2 900:300 Destination <11 chars> barred", state
