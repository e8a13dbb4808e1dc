"""Defect 4: parts are claimed round robin across accounts, so one account's bulk send does not
hold another account's mail behind it. Real daemon, real SMTP client, fake SMSC over TCP."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC

BOB = "bob@beta.example"
BETA = f"""
[[account]]
name = "beta"
relay_networks = ["127.0.0.0/8"]
users = ["{BOB}"]
sender = "+48100200301"
"""
BULK, PER_MAIL, RATE = 1000, 100, 50
URGENT = "+48609999999"


async def test_one_sms_of_another_account_is_not_queued_behind_a_bulk_send(tmp_path: Path) -> None:
    # On a link limited to 50 SMS/s, account acme queues 1,000 SMS (20 s of sending); one SMS of
    # account beta queued right after must reach the SMSC within 5 s of its 250, not after the bulk.
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, extra=BETA)
        text = text.replace("max_per_second = 1000", f"max_per_second = {RATE}")
        async with running_gateway(parse_config(text, source="test config", base_dir=tmp_path)) as gw:
            numbers = [f"6011{i:05d}" for i in range(BULK)]
            for start in range(0, BULK, PER_MAIL):
                rcpts = [f"{n}@{DOMAIN}" for n in numbers[start : start + PER_MAIL]]
                res = await gw.send(mail(rcpts, "Our spring catalogue is out"), rcpts)
                assert res.error is None and not res.refused
            urgent = mail(f"{URGENT[3:]}@{DOMAIN}", "The server room is flooding")
            urgent.replace_header("From", BOB)
            loop = asyncio.get_running_loop()
            res = await gw.send(urgent, sender=BOB)
            accepted_at = loop.time()
            assert res.error is None and not res.refused
            await smsc.wait_until(lambda: any(s.destination == URGENT for s in smsc.received), timeout=60)
            waited = loop.time() - accepted_at
            assert waited < 5.0, f"beta's SMS reached the SMSC {waited:.1f} s after its 250"
            assert len(smsc.received) < BULK  # it overtook the bulk, which is still being sent


async def test_a_due_sms_behind_1000_of_its_accounts_held_ones_is_not_queued_behind_another_account(
    tmp_path: Path,
) -> None:
    # A cap on how many of an account's waiting parts a claim reads (tried for the cost of a claim
    # with 100,000 held) left an account's due SMS behind 1,000 of its own held ones to the
    # queue's head: behind every due SMS of every other account (claim 301 here, 19.5 s on a
    # 50 SMS/s link against 1 s).
    import dataclasses

    from gateway.smtp.accept import accept
    from gateway.store.db import Store
    from tests.test_store import Clock, acceptance

    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    alpha, beta = store.accounts.add_account("alpha").id, store.accounts.add_account("beta").id

    async def send(account: int, numbers: list[str]) -> None:
        await accept(store, dataclasses.replace(acceptance(numbers), account_id=account))

    await send(alpha, [f"+4860100{i:04d}" for i in range(1001)])
    with store.db.transaction():  # held until tomorrow (quiet hours, a long deferral)
        store.db.conn.execute("UPDATE parts SET next_attempt_at = ?", (clock.t + 86400,))
    await send(beta, [f"+4860200{i:04d}" for i in range(300)])
    clock.t += 1
    await send(alpha, ["+48609999999"])
    clock.t += 1
    claims = 0
    while claims < 302:
        claims += 1
        if any(p.destination == "+48609999999" for p in store.queue.claim_due(1)):
            break
    store.close()
    assert claims <= 2, f"alpha's due SMS went at claim {claims}, behind beta's"


async def test_the_parts_of_a_long_sms_past_1000_held_ones_go_together(tmp_path: Path) -> None:
    # With the account's walk capped and nothing more, part 1 (the 1,000th walked) went at claim 2
    # and parts 2 and 3 at claims 302 and 303, behind another account's 300: minutes apart on a
    # phone that waits less than that to join them.
    import dataclasses

    from gateway.smtp.accept import accept
    from gateway.store.db import Store
    from tests.test_store import Clock, acceptance

    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    alpha, beta = store.accounts.add_account("alpha").id, store.accounts.add_account("beta").id
    await accept(
        store, dataclasses.replace(acceptance([f"+4860100{i:04d}" for i in range(999)]), account_id=alpha)
    )
    with store.db.transaction():
        store.db.conn.execute("UPDATE parts SET next_attempt_at = ?", (clock.t + 86400,))
    await accept(
        store, dataclasses.replace(acceptance([f"+4860200{i:04d}" for i in range(300)]), account_id=beta)
    )
    clock.t += 1
    await accept(store, dataclasses.replace(acceptance(["+48609999999"], parts=3), account_id=alpha))
    clock.t += 1
    went: dict[int, int] = {}
    claims = 0
    while len(went) < 3 and claims < 400:
        claims += 1
        went |= {p.seq: claims for p in store.queue.claim_due(1) if p.destination == "+48609999999"}
    store.close()
    assert len(went) == 3 and max(went.values()) - min(went.values()) <= 4, went
