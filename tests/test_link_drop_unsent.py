"""A part handed to a link as its connection goes is refused before a byte is written: it goes back
to the queue with the attempts it had. Each such refusal counted an attempt (and grew the part's
back-off) although the SMS never left: a flapping link aged SMS that no SMSC had seen.

A real SMPP peer that takes submits and never answers them: the link's response timeout takes the
connection down with the window full and parts claimed ahead of it, which the dispatcher hands over
while the link goes.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC

WINDOW, SMS = 4, 16


async def test_parts_refused_unsent_by_a_link_going_down_keep_their_attempts(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with HeldSMSC() as smsc:
            text = config_text(tmp_path, smsc_port=smsc.port)
            text = text.replace("window = 10", f"window = {WINDOW}")
            text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 1")
            async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
                rcpts = [f"6011{i:05d}@{DOMAIN}" for i in range(SMS)]
                assert (await gw.send(mail(rcpts, "Spring sale"), rcpts)).error is None
                await smsc.wait_for(WINDOW)
                await gw.until(lambda: any(str(e.get("error", "")).startswith("link ") for e in logs))
                refused = {
                    e["part"]
                    for e in logs
                    if e["event"] == "mt.deferred" and str(e.get("error", "")).startswith("link ")
                }
                assert refused, [e for e in logs if e["event"].startswith("mt.")]
                # Those not sent again since (a reconnected link may have taken some by now).
                waiting = gw.store.db.conn.execute(
                    "SELECT id, attempts FROM parts WHERE state = 'deferred' AND id IN"
                    f" ({','.join(map(str, refused))})"
                ).fetchall()
    assert waiting, refused
    assert all(attempts == 0 for _, attempts in waiting), waiting
