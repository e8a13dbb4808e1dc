"""R-5.2 totals per user: a user is one user however their address is cased, also when the ACL
entry was removed and added again in other case (the gateway tells users apart case-insensitively)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.store.db import Store
from tests.billing_reader import read
from tests.conftest import free_port, mail, make_config, running_gateway

OLD, NEW = "piotr.nowak@zolw.pl", "Piotr.Nowak@zolw.pl"
TO = "+48601123456@sms.example.com"


async def test_a_user_removed_and_added_again_in_other_case_is_one_user_total(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())

    def acl(change: Callable[[Store], object]) -> None:
        """What `smsgw user add|remove` does: another connection to the daemon's database."""
        store = Store.open(cfg.db_path)
        try:
            change(store)
        finally:
            store.close()

    async with running_gateway(cfg) as gw:
        acl(lambda s: s.accounts.add_user(OLD, "acme"))
        assert (await gw.send(mail([TO], body="first"), sender=OLD)).error is None
        await gw.until(lambda: len(gw.states()) == 1)
        # `smsgw user remove piotr.nowak@zolw.pl`, then `smsgw user add Piotr.Nowak@zolw.pl acme`
        acl(lambda s: (s.accounts.remove_user(OLD), s.accounts.add_user(NEW, "acme")))
        assert (await gw.send(mail([TO], body="second"), sender=NEW)).error is None
        await gw.until(lambda: len(gw.states()) == 2)
    tz = ZoneInfo(cfg.gateway.timezone)
    (account,) = write_month(cfg.db_path, cfg.state_dir, Month.containing(time.time(), tz), tz).accounts
    billing = read(account.path.read_bytes())
    # Each line says who sent it as the gateway knew them then: the removed user's in lower case.
    assert [line["user_or_phone"] for line in billing.sms] == [OLD, NEW]
    users = {key: row["sms"] for (group, key), row in billing.totals.items() if group == "user"}
    assert users == {NEW: "2"}  # one person, by the spelling of their latest SMS
