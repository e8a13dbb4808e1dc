"""`smsgw status`'s window of a rate-limited link counts the submits on the wire; those waiting for the
link's rate are said apart.

Defect: the window showed the dispatcher's places, the parts waiting for their pacing among them: a link
at max_per_second 0.5 with one submit out, unanswered, read "window 10/10" as if the SMSC held ten.
Now it reads "window 1/10, 9 waiting for its rate 0.5/s".

The daemon against the SMPP fake over TCP that holds its answers; the status line as `smsgw status`
words the daemon's link snapshot (`LinkView`).
"""

from __future__ import annotations

import time
from pathlib import Path

from gateway.cli.statuslinks import link_lines
from gateway.config import parse_config
from gateway.linkstatus import LinkView
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC


async def test_the_window_of_a_rate_limited_link_counts_what_is_on_the_wire(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace(
            "max_per_second = 1000", "max_per_second = 0.5"
        )
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            rcpts = [f"6011234{i:02d}@{DOMAIN}" for i in range(12)]
            assert (await gw.send(mail(rcpts, "Plant closed"), rcpts)).error is None
            await smsc.wait_for(1)
            pacer = gw.daemon.dispatcher.pacers["main"]
            await gw.until(lambda: pacer.in_flight == 10)  # the window's places all taken
            snapshot = LinkView(gw.daemon.dispatcher)()
            smsc.answer(len(smsc.received))
    link = snapshot["main"]
    out, held = link["in_flight"], link.get("pacing")
    # One submit out, a second maybe (2 s a submit): the rest of the window's places wait for the rate.
    assert out in (1, 2) and held == 10 - out and link["window"] == 10, link
    [line] = link_lines({"links": snapshot}, time.time())
    said = f"link main: active, window {out}/10, {held} waiting for its rate 0.5/s, "
    assert line.startswith(said), line
