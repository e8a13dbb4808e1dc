"""A long SMS whose only link is down, its first part in one claim and the others in the next: the
first was handed back each second ("no link up") and the later parts were put back behind it each
time. `mt.behind_suspect` said so at INFO at every put back (1,144 lines in 20 minutes for one SMS,
thousands in a night's outage); it was then said once a part at INFO, the repeats at DEBUG. Now no
part is put back at all: each waits unclaimed for its link (`gateway.linkwaits`), and nothing is said
again while it waits. A real daemon with an exclusive prefix link no SMSC listens on, and a default
link up whose window sets the claims (its free places and two windows: 30 parts), started again with
the SMS queued."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import load_config
from gateway.linkwaits import PARKED
from tests.conftest import Running, config_text, free_port, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC
from tests.test_exclusive_prefix import to

LONG = "A long text to a phone whose link is down, in three parts. " * 6  # 360 characters
BEFORE = 29  # SMS queued before it: its first part is the 30th, the last of the first claim


def _config(tmp_path: Path, port_own: int, port_default: int) -> Path:
    extra = 'prefixes = ["+4860"]\nexclusive = true'
    text = config_text(tmp_path, smsc_port=port_own, smsc_extra=extra)
    text += smsc_link("backup", port_default, "window = 10")
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


async def test_parts_waiting_behind_an_sms_whose_link_is_down_are_said_once(tmp_path: Path) -> None:
    port_own = free_port()  # nothing listens there: the exclusive prefix link stays down
    async with HappySMSC() as backup:
        cfg = load_config(_config(tmp_path, port_own, backup.port))
        async with running_gateway(cfg) as gw:
            numbers = [to(f"6011{i:05d}") for i in range(BEFORE)]
            assert (await gw.send(mail(numbers, "Waiting for our link"))).error is None
            assert (await gw.send(mail(to("601123456"), LONG))).error is None
        # All due at once, as after an outage (the first start may have left them waiting for the link,
        # due at their validity's end, or due at different times).
        with sqlite3.connect(cfg.db_path) as conn:
            conn.execute("UPDATE parts SET next_attempt_at = (SELECT MIN(created_at) FROM messages)")
        with capture_logs() as logs:

            def behind() -> list[dict[str, object]]:
                return [e for e in logs if e["event"] == "mt.behind_suspect"]

            # Started again with them queued (an upgrade, a restart): claimed in their order.
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: waiting(gw) == BEFORE + 3, timeout=30)
                await asyncio.sleep(2)  # the dispatcher's looks, each second: none claims them again
                assert waiting(gw) == BEFORE + 3
    assert behind() == []  # nothing put back behind it, nothing said again
    assert backup.received == []  # (the exclusive prefix never leaves by the other link)


def waiting(gw: Running) -> int:
    """The parts that wait, unclaimed, for their link."""
    sql = f"SELECT COUNT(*) FROM parts WHERE {PARKED}"
    return int(gw.store.db.conn.execute(sql).fetchone()[0])
