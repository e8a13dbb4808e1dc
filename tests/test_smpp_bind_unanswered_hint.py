"""An SMPP link pointed at a port that never answers its bind, a CIMD2 SMSC's (Kannel's test_cimd2,
which waits for a CIMD2 login): the link's error says what was waited for and what to check.

It said "connecting" for the response timeout, then only "no bind_transceiver_resp": nothing told an
admin that the port may speak another protocol. The peer is the real test_cimd2 over loopback TCP."""

from __future__ import annotations

from smsc.base import LinkState
from tests.fakes.cimd2 import kannel_cimd2
from tests.test_smpp_link import running_link


async def test_an_smpp_bind_a_cimd2_port_never_answers_names_the_port_and_the_likely_mixup() -> None:
    async with kannel_cimd2() as smsc:
        async with running_link(smsc.port, active=False, response_timeout_seconds=1) as (link, ev):
            await ev.wait_until(lambda: bool(link.stats().last_error), timeout=20)
            said = link.stats().last_error
            assert link.state is not LinkState.ACTIVE
    assert said == (
        f"no answer to bind in 1 s: is 127.0.0.1:{smsc.port} an SMPP port (CIMD2 is usually 9971)?"
    ), said
