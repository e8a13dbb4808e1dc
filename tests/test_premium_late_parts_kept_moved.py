"""The late part of a long premium SMS whose first parts are still kept (the service's address has
not confirmed) when the service moves to another account (`premium set --account beta`, address
unchanged and still unconfirmed). The first parts were mailed to nobody, so they go with the service
once the address confirms (`moves.kept_to`); the late part is the same SMS and is kept with them.
Before, it was taken for the late part of an SMS mailed before the move: mailed at once to the
unconfirmed address, ahead of its own first parts, and billed delivered (R-4.4, R-4.5).

Real SQLite file, injected clock: the parts come through `GatewayEvents`, the timeout is the daemon's
housekeeping worker, the confirmation goes through the function the relay port calls.
"""

from __future__ import annotations

from pathlib import Path

from gateway.premium import answers, passwords
from gateway.reassembly import TIMEOUT_SECONDS
from gateway.smtp.intake import read_mail
from tests.test_late_segments import charged, first_two_parts_timed_out, vote
from tests.test_premium import CLIENT, World


async def test_the_late_part_of_a_kept_vote_is_kept_with_it_after_the_service_moved(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)  # the client's address has not confirmed yet
    ((_k, _f, _r, ask),) = w.outbox("premium-verify")
    hk = await first_two_parts_timed_out(w)
    assert [r[0] for r in charged(w)] == ["awaiting"]

    beta = w.store.accounts.add_account("beta")  # `premium set KP123 --account beta`
    w.r.keep_as_it_was(w.r.service(sid), w.r.acl(sid))
    w.r.update_service(sid, account_id=beta.id)
    assert w.r.service(sid).verified_at is None

    w.now += 600
    await vote(w, 3)  # the late part
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    sent = [(m[2], m[3]["Subject"]) for m in w.outbox("premium")]
    assert not sent, f"mailed to {CLIENT}, whose address never confirmed, before its first parts: {sent}"
    assert [r[:4] for r in charged(w)] == [("awaiting", sid, "KP123", 2), ("awaiting", sid, "KP123", 1)]

    # The address confirms: the first parts, then the late one, both to it with one answer address,
    # both beta's now (the service's account when they were mailed).
    target = passwords.target(ask["Reply-To"].addresses[0].username)
    assert target is not None
    reply = read_mail(b"From: konkurs@acme.pl\r\nSubject: Re: confirm\r\n\r\nyes\r\n")
    answers.confirm(w.store, w.config, target.token, reply)  # type: ignore[arg-type]
    first, late = w.outbox("premium")
    assert (first[2], late[2]) == (CLIENT, CLIENT)
    assert late[3]["Reply-To"] is not None and late[3]["Reply-To"] == first[3]["Reply-To"]
    assert late[3].get_content().split("\n")[0].endswith("part three")
    assert [r[0] for r in charged(w)] == ["mailed", "mailed"]
    accounts = w.store.db.conn.execute("SELECT account_id FROM premium_mo ORDER BY id").fetchall()
    assert accounts == [(beta.id,), (beta.id,)]
