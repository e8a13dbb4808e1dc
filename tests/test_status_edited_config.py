"""`smsgw status` judges the running daemon by the config it runs with, not by the file edited since.

An admin edits config.toml for the next restart: an exclusive link added and not yet started read as
an outage ("no link up for +4860", exit 1), and `exclusive` commented out while the daemon still had
that outage read as healthy (exit 0, `routes_unserved: []`) while /healthz answered 503. The daemon
puts its routes and its file's digest in the status file; status uses them and says the file changed.
A real daemon against SMPP servers over TCP, `smsgw status` as a separate process on the same files.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.config import Config, load_config
from gateway.housekeeping import read_status
from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_exclusive_prefix import two_links
from tests.test_process import smsgw

CHANGED = "changed since the daemon started: restart it to apply"


async def _backup_up(gw: Any, cfg: Config) -> None:
    def up() -> bool:
        return (read_status(cfg.state_dir) or {}).get("links", {}).get("backup", {}).get("state") == "active"

    await gw.until(up)


async def test_an_outage_stays_an_outage_when_exclusive_is_taken_out_of_the_file(tmp_path: Path) -> None:
    async with HappySMSC() as backup:
        path = two_links(tmp_path, free_port(), backup.port, exclusive=True)  # "main" down
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Only by our SMSC"))).error is None
            await _backup_up(gw, cfg)
            before = await asyncio.to_thread(smsgw, path, "status")
            assert before.returncode == 1 and CHANGED not in before.stdout, before.stdout
            path.write_text(path.read_text().replace("exclusive = true", "# exclusive = true"))
            status = await asyncio.to_thread(smsgw, path, "status")
            as_json = await asyncio.to_thread(smsgw, path, "status", "--json")
            assert status.returncode == 1, status.stdout
            assert "routes    no link up for +4860: their SMS wait" in status.stdout, status.stdout
            assert f"config    {path} {CHANGED}" in status.stdout, status.stdout
            report = json.loads(as_json.stdout)
            assert as_json.returncode == 1
            assert report["routes_unserved"] == ["+4860"] and report["config_changed"] is True


async def test_an_exclusive_link_added_to_the_file_is_no_outage_before_the_restart(tmp_path: Path) -> None:
    async with HappySMSC() as backup:
        path = two_links(tmp_path, free_port(), backup.port, exclusive=False)  # "main" down, not exclusive
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Via backup"))).error is None
            await backup.wait_for(1)
            await _backup_up(gw, cfg)
            path.write_text(
                path.read_text().replace('prefixes = ["+4860"]', 'prefixes = ["+4860"]\nexclusive = true')
            )
            status = await asyncio.to_thread(smsgw, path, "status")
            assert "no link up for" not in status.stdout, status.stdout
            assert f"config    {path} {CHANGED}" in status.stdout, status.stdout
            assert status.returncode == 0, status.stdout
