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

from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN
from tests.test_cimd2_general_error import daemon_to_first_submit

NUMBER = "601000002"


def leaks(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines above DEBUG that show the number, in whatever form (its digits in a row)."""
    digits = lambda entry: "".join(ch for ch in str(entry) if ch.isdigit())  # noqa: E731
    return [e for e in logs if e.get("log_level") != "debug" and NUMBER in digits(e)]


@pytest.mark.parametrize(("code", "event"), [(300, "mt.failed"), (999, "mt.deferred")])
async def test_the_smscs_words_quoting_the_phone_reach_no_log_line(
    tmp_path: Path, code: int, event: str
) -> None:
    async with daemon_to_first_submit(tmp_path, f"{NUMBER}@{DOMAIN}", "Hello, barred") as first:
        gw, _peer, conn, submit, sink, logs = first
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
