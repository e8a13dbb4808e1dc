"""A long premium SMS whose first part, with the password, came after the timeout sent its other
parts to the fallback: the SMS is the client's after all (R-4.4), who gets its whole text and its
commission, so the month still to be billed lists it delivered to the client (pending while the
client's address is unconfirmed), not `failed` as the fallback's ("the text does not start with a
premium password"), and its parts reach the client once, in the late parts' mail (R-5.2).

Real SQLite file, injected clock, the parts through `GatewayEvents`, the timeout the daemon's
housekeeping worker, the month written by the billing writer and read back by the tests' reader.
"""

from __future__ import annotations

from pathlib import Path

from gateway.premium import handlers
from tests.test_premium import CLIENT, FALLBACK, World
from tests.test_premium_corrections import JAN, acme_file, joined_without_password, late_first_part


async def test_the_parts_a_late_password_claims_are_billed_delivered_to_the_client(tmp_path: Path) -> None:
    w = World(tmp_path)
    await joined_without_password(w)
    await late_first_part(w)
    jan = acme_file(w, JAN)
    assert [(m["status"], m["commission_pln"]) for m in jan.sms] == [("delivered", "2.20")], jan.sms
    assert "does not start with a premium password" not in jan.sms[0]["reason"]
    assert [r[0] for r in w.premium_mo()] == ["mailed", "mailed"]


async def test_while_the_address_is_unconfirmed_they_wait_and_reach_the_client_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    await joined_without_password(w)
    sid = w.store.db.conn.execute("SELECT id FROM premium_services").fetchone()[0]
    w.r.update_service(sid, verified_at=None)
    await late_first_part(w)
    assert [m["status"] for m in acme_file(w, JAN).sms] == ["pending"]
    assert [r[0] for r in w.premium_mo()] == ["awaiting", "awaiting"]

    w.r.update_service(sid, verified_at=w.now)
    assert handlers.forward_awaiting(w.store, w.config, w.r.service(sid)) == 2  # type: ignore[arg-type]
    mailed = w.outbox("premium")
    assert [m[2] for m in mailed] == [CLIENT]  # the whole SMS, once, with its answer address
    assert mailed[0][3]["Reply-To"] is not None
    assert [m[2] for m in w.outbox("premium-fallback")] == [FALLBACK]  # its parts' copy, from before
    assert [r[0] for r in w.premium_mo()] == ["mailed", "mailed"]
