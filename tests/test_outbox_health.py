"""A relay that takes no mail for half an hour is trouble, said where an operator looks.

With the relay down for a day and thousands of answers and bounces waiting, `smsgw status` exited 0,
/healthz said ok, the dashboard listed "Nothing." needing attention and /metrics had only counts:
a monitoring check reading the exit code never fired. The daemon runs against a relay address
nobody listens on; the waiting mail is made old in the store (its queue time), not by waiting.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from gateway.config import load_config
from tests.conftest import DOMAIN, STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash


async def test_mail_waiting_half_an_hour_for_the_relay_is_trouble_everywhere(tmp_path: Path) -> None:
    async with HappySMSC(fail_suffixes=("13",)) as smsc:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, extra=WEB))
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
            )
            assert (await gw.send(mail(f"601123413@{DOMAIN}", "to a phone that fails"))).error is None
            deferred = "SELECT id, last_error FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
            await gw.until(lambda: store.db.conn.execute(deferred).fetchone() is not None, timeout=15)
            fresh = await asyncio.to_thread(smsgw, config, "status")
            (mail_id, error) = store.db.conn.execute(deferred).fetchone()
            await store.write(
                lambda: store.db.conn.execute(
                    "UPDATE outbox SET created_at = ? WHERE id = ?", (time.time() - 3600, mail_id)
                )
            )
            stuck = await asyncio.to_thread(smsgw, config, "status")
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            async with httpx.AsyncClient(base_url=base) as c:
                metrics = (await c.get("/metrics")).text
                assert (await login(c, STAFF)).status_code == 303
                dashboard = (await c.get("/")).text
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr  # a mail deferred a moment ago: no trouble
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    assert "trouble: mail has waited over 30 min for the relay; the relay's last answer:" in stuck.stdout
    assert "Connect" in error and error[:40] in stuck.stdout, (error, stuck.stdout)
    [oldest] = [line for line in metrics.splitlines() if line.startswith("smsgw_outbox_oldest_seconds ")]
    assert float(oldest.split()[1]) >= 3600
    assert 'id="outbox"' in dashboard and "waiting for the relay, the oldest for 60 min" in dashboard, (
        dashboard
    )
    assert "<p>Nothing.</p>" not in dashboard
