"""A premium service's confirmation after the wall clock stepped forward: its token's lifetime counts the
time that passed, a step forward within it none (`gateway.store.forwardsteps`), as the reply windows and
the SMS validities count it.

As a fixed deadline, a step of 8 days (NTP setting right a clock 8 days behind) expired the link mailed
to the client a minute before it: the client's "yes" was refused ("This confirmation has expired") and
the dashboard, `premium list` and `premium verify` said it expired unanswered, while the paid SMS of the
public stayed kept. The daemon runs for real on a clock the test steps and the real boot time; the
confirmation is mailed by `smsgw premium add` in its own process and answered over real SMTP.
"""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.premium import confirmation, handlers
from gateway.premium.queries import confirmations_out
from gateway.store import forwardsteps
from gateway.store.db import Store
from smsc.outage import boottime
from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_premium_answer_rules import DAY
from tests.test_premium_loop import CLIENT, premium_config
from tests.test_premium_moved_service import cli, send

LIFETIME = 7 * DAY  # premium.verification_days by default


async def test_a_confirmation_mailed_before_a_step_forward_still_confirms_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # the step is seen soon
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    skew = [0.0]
    async with (
        smtp_sink(relay),
        running_gateway(cfg, lambda: time.time() + skew[0], boottime) as gw,  # type: ignore[arg-type]
    ):
        conn = gw.store.db.conn
        await cli(path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        (token,) = conn.execute("SELECT token FROM premium_verifications").fetchone()
        skew[0] = 8 * DAY  # NTP sets the clock right: 8 days ahead at once, a minute after the mail
        await gw.until(lambda: forwardsteps.kept_steps(conn) != [])
        # What the dashboard, `premium list` and `premium verify` read: waiting, not expired.
        service = handlers.repo(gw.store).active_service("KP123")
        assert service is not None
        waits = confirmation.unconfirmed(conn, service, 0, gw.store.clock())
        assert waits.expired_at is None, waits.why(str)
        confirm = EmailMessage()
        confirm["From"], confirm["To"], confirm["Subject"] = CLIENT, f"confirm-{token}@{DOMAIN}", "yes"
        confirm.set_content("yes, that is us")
        assert await send(gw.port, confirm.as_bytes(), confirm["To"]) is None  # taken, not "expired"
        await gw.until(lambda: conn.execute("SELECT verified_at FROM premium_services").fetchone()[0])


def test_a_token_lives_its_lifetime_of_time_passed_and_a_replaced_one_none(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn, made = store.db.conn, 1_800_000_000.0
        # No step: the deadline as mailed.
        assert not confirmation.token_expired(conn, made, made + LIFETIME, made + LIFETIME)
        assert confirmation.token_expired(conn, made, made + LIFETIME, made + LIFETIME + 1.0)
        assert confirmation.token_end(conn, made, made + LIFETIME) == made + LIFETIME
        # A step of 8 days an hour after it was mailed: good for 7 days of time passed, 15 on the clock.
        forwardsteps.record_forward(conn, made + 3600.0 + 8 * DAY, 8 * DAY)
        end = confirmation.token_end(conn, made, made + LIFETIME)
        assert end == made + 8 * DAY + LIFETIME
        assert not confirmation.token_expired(conn, made, made + LIFETIME, made + 9 * DAY)
        assert not confirmation.token_expired(conn, made, made + LIFETIME, end)
        assert confirmation.token_expired(conn, made, made + LIFETIME, end + 1.0)
        # A token mailed after the step lives 7 days from then.
        later = made + 9 * DAY
        assert confirmation.token_end(conn, later, later + LIFETIME) == later + LIFETIME
        # A token replaced (a --resend) ends at once, the step made before it counted or not.
        assert confirmation.token_expired(conn, made, made, made + 9 * DAY + 1.0)
    finally:
        store.close()


def test_a_confirmation_out_across_a_step_still_holds_the_domain_and_a_resend_ends_it(tmp_path: Path) -> None:
    # `confirmations_out` (check-config's dropped domains) reads SQLite's clock: the token is stamped as
    # that clock read 8 days and a minute ago, before a step of 8 days.
    from tests.test_premium import World as PremiumWorld

    w = PremiumWorld(tmp_path)
    w.now = time.time()
    w.service(verified=False)
    conn = w.store.db.conn
    conn.execute(
        "UPDATE premium_verifications SET created_at = created_at - ?1, expires_at = expires_at - ?1",
        (8 * DAY + 60.0,),
    )
    assert confirmations_out(conn) == []  # the deadline read alone: past
    forwardsteps.record_forward(conn, time.time() - 30.0, 8 * DAY)
    assert confirmations_out(conn) == ["KP123"]
    # A resend replaces it: the old link stops working, the step made while it was out or not.
    service = w.r.active_service("KP123")
    assert service is not None
    handlers.ask_verification(w.store, w.config, service, "acme")  # type: ignore[arg-type]
    old, new = conn.execute(
        "SELECT created_at, expires_at FROM premium_verifications ORDER BY created_at"
    ).fetchall()
    assert confirmation.token_expired(conn, *old, w.now + 1.0)
    assert not confirmation.token_expired(conn, *new, w.now + 1.0)
    assert confirmations_out(conn) == ["KP123"]
