"""A service whose confirmation nobody can answer says so (R-4.3): the relay refused the confirmation
mail (a typo in `--email`: 550 User unknown) or it expired. `premium list`, `premium verify` and the
panel said "has not confirmed", as though the client were slow, while the public's paid SMS were
kept for good; they now give the relay's words or the expiry and what to do, and the dashboard
lists a service keeping paid SMS unconfirmed for more than a day.

Real peers: the daemon and its simulator, its outbox worker against a real SMTP relay that refuses
the address at RCPT, the CLI on the same SQLite file, then the panel through its real app on the
daemon's database.
"""

from __future__ import annotations

import asyncio
import html
import time
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.store.db import Store
from smsc.simulator.control import send_command
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_premium_loop import PHONE, premium_config
from tests.test_reply_refused import USER_UNKNOWN, RefusingRelay
from tests.web_helpers import OPERATOR, as_user, password_hash, web_context

TYPO = "konkurs@acme.pl.pl"
DAY = 86400.0
LIFETIME = 4.0


async def test_a_refused_or_expired_confirmation_says_so_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = free_port()
    path, _ = premium_config(tmp_path, "smpp", relay)
    # Confirmations good for 4 s: the CLI, another process, reads the machine's clock.
    text = path.read_text().replace("[premium]\n", f"[premium]\nverification_days = {LIFETIME / DAY}\n")
    path.write_text(text)
    cfg = parse_config(text, source="test", base_dir=tmp_path)

    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main(["-c", str(path), *args]) == 0
        return capsys.readouterr().out

    async with (
        smtp_sink(relay, RefusingRelay(TYPO)) as sink,
        running_gateway(cfg) as gw,
    ):
        await asyncio.to_thread(cli, "premium", "add", "KP123", "--account", "acme", "--email", TYPO)
        await asyncio.to_thread(cli, "premium", "add", "KP456", "--account", "acme", "--email", "ok@acme.pl")
        gw.store.outbox.on_queued()
        db = gw.store.db.conn
        await gw.until(
            lambda: db.execute("SELECT state FROM outbox ORDER BY id").fetchall() == [("failed",), ("sent",)]
        )
        assert len(sink.messages) == 1
        mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP123 vote A"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchall() == [("awaiting",)])
        refused = (
            f"the confirmation mail to {TYPO} was refused by the mail relay ({USER_UNKNOWN.format(TYPO)})"
        )
        fix = "`smsgw premium set KP123 --email ADDRESS`"
        listed = await asyncio.to_thread(cli, "premium", "list")
        assert f"UNCONFIRMED, 1 SMS kept: {refused}; correct the address with {fix}" in listed
        assert "KP456" in listed and "expired" not in listed
        shown = await asyncio.to_thread(cli, "premium", "verify", "KP123")
        assert f"premium service KP123: {refused}; 1 SMS kept until it does" in shown
        assert fix in shown and "has not confirmed" not in shown
        await asyncio.sleep(LIFETIME)  # past the time a confirmation lasts
        listed = await asyncio.to_thread(cli, "premium", "list")
        assert "the confirmation mailed to ok@acme.pl expired unanswered" in listed
        assert "`smsgw premium verify KP456 --resend` mails a new one" in listed
        assert refused in listed  # the refusal is still what keeps KP123
    # The panel on the daemon's database, a day and more after the vote came.
    store = Store.open(cfg.db_path, clock=lambda: time.time() + 2 * DAY)
    store.accounts.add_user(OPERATOR, "acme", password_hash=password_hash())
    store.accounts.set_user(OPERATOR, role="operator")
    store.db.serve()
    web = web_context(tmp_path, store, '[premium]\nnumbers = ["7155", "7355"]\n')
    try:
        async with as_user(web, OPERATOR) as c:
            premium = html.unescape((await c.get("/premium")).text)
            dashboard = html.unescape((await c.get("/")).text)
        assert refused in premium and "smsgw premium set KP123 --email ADDRESS" in premium
        assert "expired unanswered" in premium
        assert (
            'id="premium-KP123"' in dashboard and "Premium service KP123: 1 paid SMS kept since" in dashboard
        )
        assert refused in dashboard
        assert 'id="premium-KP456"' not in dashboard  # nothing kept: nothing the phones paid for waits
    finally:
        web.counts.close()
        store.close()


def test_a_refused_confirmation_of_another_service_to_the_same_address_is_not_this_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """KP456's confirmation to x@acme.pl went; KP789's, to the same address later, was refused.
    The refusal was read by address and time alone, so KP456 said its confirmation was refused and
    told the operator to correct an address that works; and a company's dashboard could show the
    relay's words about another company's mail. Each confirmation's mail names its own token."""
    path, _ = premium_config(tmp_path, "smpp", free_port())

    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main(["-c", str(path), *args]) == 0
        return capsys.readouterr().out

    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        store.accounts.add_account("acme")
        cli("premium", "add", "KP456", "--account", "acme", "--email", "x@acme.pl")
        cli("premium", "add", "KP789", "--account", "acme", "--email", "x@acme.pl")
        with store.db.transaction():
            conn = store.db.conn
            first, second = [r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id")]
            now = time.time()
            conn.execute("UPDATE outbox SET state = 'sent', sent_at = ? WHERE id = ?", (now, first))
            conn.execute(
                "UPDATE outbox SET state = 'failed', sent_at = ?, last_error = ? WHERE id = ?",
                (now + 1, "550 5.2.1 x@acme.pl: mailbox over quota for new senders", second),
            )
    finally:
        store.close()
    listed = {line.split()[0]: line for line in cli("premium", "list").splitlines() if line.startswith("KP")}
    assert "refused by the mail relay" in listed["KP789"], listed
    assert "refused" not in listed["KP456"] and listed["KP456"].endswith("UNCONFIRMED, 0 SMS kept"), listed
