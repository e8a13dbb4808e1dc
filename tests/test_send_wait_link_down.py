"""`smsgw send --wait` while no link can take the SMS says why it waits, and says it again at the end.

It printed "queued", then after 120 s "no final state within 120 s", nothing of the link being down:
an admin's first test SMS on a link not yet up looked like a gateway that swallows mail. The real
daemon, its SMSC port with nothing listening; the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.conftest import free_port
from tests.test_process import smsgw, start_daemon, write_config


async def test_send_wait_with_the_link_down_names_the_link_while_it_waits_and_at_the_end(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the link stays down
    proc = await start_daemon(config, smtp_port)
    try:
        out = await asyncio.to_thread(
            smsgw, config, "send", "+48601123456", "Test", "--wait", "--wait-seconds", "5"
        )
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert "accepted: 250" in out.stdout and ": queued" in out.stdout, out.stdout
        assert "waiting: no link up for +48601123456 (link main " in out.stdout, out.stdout
        assert out.stdout.count("waiting:") == 1, out.stdout  # said once, not at every look
        said = " ".join(out.stderr.split())
        assert "no final state within 5 s: no link up for +48601123456 (link main " in said, said
        assert "follow it with `smsgw queue list`" in said
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
