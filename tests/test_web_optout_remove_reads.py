"""A company admin taking its account's own opt-out off checks that entry by its unique index. It
asked `PolicyRepo.optout_by`, which also reads the shared list: after any settings change the whole
list into the settings cache, on the daemon's own connection (50-90 ms at 100,000 numbers). Counted
in the loop's read steps, not in time."""

from __future__ import annotations

from pathlib import Path

from tests.test_web_user_add_reads import loop_steps
from tests.web_helpers import ADMIN, as_user, csrf_of, panel_store, web_context

SHARED = 5000  # numbers on the shared list: a read of each of them is tens of thousands of steps
STEPS = 2000  # the removal's own work on the loop's connection (the delete, its trigger, the audit)
OWN = "+48601999111"


async def test_an_admin_takes_the_accounts_own_entry_off_without_reading_the_shared_list(
    tmp_path: Path,
) -> None:
    store = panel_store(tmp_path)

    def listed() -> None:
        store.db.conn.executemany(
            "INSERT INTO optouts (number, word, source, created_at) VALUES (?, 'STOP', 'mo', 0)",
            ((f"+48603{i:06d}",) for i in range(SHARED)),
        )
        acme = store.accounts.get_account("acme").id
        store.policy.add_account_optout(acme, OWN)  # a settings change: the cache starts afresh

    await store.write(listed)
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, ADMIN) as c:
            token = csrf_of((await c.get("/account")).text)
            data = {"csrf": token, "action": "remove", "number": OWN, "confirm": "yes"}
            steps, _ = await loop_steps(web, lambda: c.post("/optouts", data=data))
            assert (
                store.db.conn.execute("SELECT 1 FROM account_optouts WHERE number = ?", (OWN,)).fetchone()
                is None
            )
            assert steps < STEPS
            # A number of the shared list is still the operator's to take off, not this admin's.
            data["number"] = "+48603000007"
            steps, _ = await loop_steps(web, lambda: c.post("/optouts", data=data))
            assert store.policy.is_opted_out("+48603000007") and steps < STEPS
    finally:
        web.counts.close()
        store.close()
