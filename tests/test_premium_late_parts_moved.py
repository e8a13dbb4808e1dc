"""The late parts of a long premium SMS whose service moved to another account after its first parts
were mailed (`premium set --account --email`): they are the same SMS, so they go to the address the
first parts went to, with its answer address, billed to the account those are (R-4.4, R-4.5).
Before, they went to the new account's address with the earlier client's answer address, billed to
the earlier account, and the new client's answer was refused.

Real SQLite file, injected clock: the parts come through `GatewayEvents`, the timeout is the
daemon's housekeeping worker, the answers go through the function the relay port calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from tests.test_late_segments import charged, first_two_parts_timed_out, vote
from tests.test_premium import CLIENT, World

NEW = "votes@beta.example"


@pytest.mark.parametrize("confirmed", [True, False], ids=["new-address-confirmed", "unconfirmed"])
async def test_late_parts_go_where_the_first_ones_went_after_the_service_moved(
    tmp_path: Path, confirmed: bool
) -> None:
    w = World(tmp_path)
    sid = w.service()
    hk = await first_two_parts_timed_out(w)
    token = w.token()

    # The service moves to beta with beta's address, as `premium set --account beta --email` does.
    beta = w.store.accounts.add_account("beta")
    w.r.keep_as_it_was(w.r.service(sid), w.r.acl(sid))
    w.r.update_service(sid, account_id=beta.id, email=NEW, verified_at=w.now if confirmed else None)
    w.r.set_acl(sid, [NEW])

    w.now += 600
    await vote(w, 3)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    first, late = w.outbox("premium")
    assert (first[2], late[2]) == (CLIENT, CLIENT)  # not beta's, not kept for its confirmation
    assert late[3]["Reply-To"] == first[3]["Reply-To"]
    assert [r[0] for r in charged(w)] == ["mailed", "mailed"]
    accounts = w.store.db.conn.execute("SELECT account_id FROM premium_mo ORDER BY id").fetchall()
    assert accounts == [(w.account.id,), (w.account.id,)]

    # The client that got both answers the SMS; beta's never got it.
    reply, sent = w.answer("Thanks", sender=NEW, token=token)
    assert not sent and "came in for another account" in reply and "acme" not in reply, reply
    reply, sent = w.answer("Thanks", token=token)
    assert sent, reply
