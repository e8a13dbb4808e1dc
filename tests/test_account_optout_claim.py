"""A company admin's opt-out ends their account's SMS already waiting for the number, and no other's.

An account's own opt-out (migration 59) was checked only when mail came in: SMS of that account
already queued (the link down, quiet hours, retries) still went to the phone once the link came up,
where the shared list's entries end them at the claim. Real peers: the daemon's SMTP listener and
panel, an SMPP SMSC over TCP that comes up after the opt-out, two accounts on their own networks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_company_admin_reach import (
    ACME_ADMIN,
    ACME_IP,
    BETA_ADMIN,
    BETA_IP,
    _config,
    _optout_form,
    _panel,
    _people,
    _send,
)
from tests.web_helpers import login


async def test_waiting_sms_of_the_admins_account_end_and_the_other_accounts_go(tmp_path: Path) -> None:
    relay, smsc_port = free_port(), free_port()  # nothing listens on the SMSC's port yet: the link is down
    async with smtp_sink(relay), running_gateway(_config(tmp_path, smsc_port, relay)) as gw:
        await _people(gw)
        assert await _send(gw, STAFF, ACME_IP, "acme waits for the link") == (250, "")
        assert await _send(gw, BETA_ADMIN, BETA_IP, "beta waits for the link") == (250, "")
        async with _panel(gw) as acme:
            assert (await login(acme, ACME_ADMIN)).status_code == 303
            assert (await _optout_form(acme, "add")).status_code == 303
        async with HappySMSC(port=smsc_port) as smsc:
            await smsc.wait_for(1, timeout=20)
            states = "SELECT a.name, m.state, m.reason FROM messages m JOIN accounts a ON a.id = m.account_id"

            def settled() -> bool:
                return all(r[1] != "queued" for r in gw.store.db.conn.execute(states))

            await gw.until(settled)
            await asyncio.sleep(0.5)  # time for a second submit, had acme's SMS gone too
            texts = [s.text for s in smsc.received]
            assert len(texts) == 1 and "beta waits for the link" in texts[0], texts
            by_account = {r[0]: (r[1], r[2]) for r in gw.store.db.conn.execute(states)}
            assert by_account["acme"][0] == "failed" and "opt-out list" in (by_account["acme"][1] or "")
