"""An `[[smsc]]` block whose login alone changed and then changed back (same host and port).

The SMS an old bind took wait under a name of their own until a block has that bind again. That name
was NAME@HOST:PORT, with no login: at the change back the second login's SMS moved under the same
name as the first login's, and the bind noted for it was overwritten with the second login's. The
first login's SMS then never matched the old SMSC's receipts again, though a block had its bind back
(dlr.unmatched; they would end 'unreported'). The daemon against built-in simulators over TCP and a
real SQLite file.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from smsc.simulator.control import execute
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.test_link_endpoint_changed import simulator


def part_links(tmp_path: Path) -> dict[int, str]:
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn:
        return dict(conn.execute("SELECT message_id, link FROM parts"))


async def test_the_first_logins_sms_match_its_receipts_after_the_login_changed_and_back(
    tmp_path: Path,
) -> None:
    async with simulator(tmp_path, "a") as smsc:
        text = config_text(tmp_path, smsc_port=smsc.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "first login"))).error is None
            await gw.until(lambda: gw.states() == ["submitted"])
            (first_id,) = gw.store.db.conn.execute(
                "SELECT smsc_id FROM parts WHERE message_id = 1"
            ).fetchone()
        other = text.replace('system_id = "smsgw"', 'system_id = "smsgw2"', 1)
        object.__setattr__(smsc.core.cfg, "system_id", "smsgw2")
        async with running_gateway(parse_config(other, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123458@{DOMAIN}", "second login"))).error is None
            await gw.until(lambda: gw.states()[1:] == ["submitted"])
        object.__setattr__(smsc.core.cfg, "system_id", "smsgw")
        async with running_gateway(parse_config(text, base_dir=tmp_path)):
            pass
        links = part_links(tmp_path)
        assert links[1] != links[2], links  # each login's SMS under a name of their own
        with capture_logs() as logs:
            async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
                report = {"op": "report", "message_id": first_id, "status": "delivered"}
                assert (await execute(smsc.core, report))["ok"]
                await gw.until(
                    lambda: gw.states()[0] == "delivered" or any(e["event"] == "dlr.unmatched" for e in logs)
                )
                assert gw.states()[0] == "delivered", [e["event"] for e in logs]
