"""A vote kept until its service's address confirms, the service moved to another account meanwhile
(`premium set --account`): it goes with the service, to the client that gets it, billed to that
client and answered by it (R-4.3, R-4.5, R-5). Before, it was mailed to the new client's address
yet billed to the earlier account, whose client never got its answer address, and the new client's
answer was refused: the answer the phone paid for could never be sent.

Against real peers first (the daemon and its simulator, a real SMTP sink and client, the CLI as its
own process, the billing run), then below the network on a real SQLite file with an injected clock
for a vote whose month was billed before the address confirmed (`gateway.premium.corrections`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import load_config
from gateway.premium import handlers
from smsc.simulator.control import send_command
from tests.test_premium import PHONE, World
from tests.test_premium_answer_rules import premium
from tests.test_premium_corrections import FEB, JAN, acme_file, at, bill
from tests.test_premium_loop import reply_to
from tests.test_premium_moved_service import cli, send
from tests.test_two_way import parsed

NEW = "votes@beta.example"  # the address account beta gives the service it takes over


async def test_a_kept_vote_goes_with_its_service_to_the_client_that_confirms(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        await cli(w.config, "premium", "add", "KPQ01", "--account", "acme", "--email", "konkurs@acme.pl")
        mo = {
            "op": "mo",
            "source": PHONE,
            "destination": "7355",
            "text": "KPQ01 kept vote",
            "protocol": "smpp",
        }
        assert (await send_command("127.0.0.1", w.gw.daemon.simulator.control_port, mo))["ok"]
        kept = "SELECT state FROM premium_mo WHERE password = 'KPQ01'"
        await w.gw.until(lambda: w.gw.store.db.conn.execute(kept).fetchall() == [("awaiting",)])

        out = await cli(w.config, "premium", "set", "KPQ01", "--account", "beta", "--email", NEW)
        assert "the 1 SMS kept until votes@beta.example confirms go with the service" in out, out
        assert "billed to beta" in out and "stay acme's" not in out, out

        w.gw.store.outbox.on_queued()
        await w.sink.wait(3)  # KP123's confirmation, KPQ01's to acme, then KPQ01's to beta's address
        confirmation = w.sink.messages[2]
        assert confirmation[1] == [NEW]
        assert await send(w.gw.port, *reply_to(parsed(confirmation[2]), "yes", NEW), NEW) is None
        w.gw.store.outbox.on_queued()
        await w.sink.wait(4)
        assert w.sink.messages[3][1] == [NEW]
        vote = parsed(w.sink.messages[3][2])
        assert str(vote["Subject"]).startswith("KPQ01 · 7355")

        # Beta's client got it: beta's client answers it, as it answers the votes it gets from now on.
        assert await send(w.gw.port, *reply_to(vote, "Thanks from beta", NEW), NEW) is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Thanks from beta"

        cfg = load_config(w.config)
        month = datetime.now(ZoneInfo(cfg.gateway.timezone)).strftime("%Y-%m")
        await cli(w.config, "billing", "run", "--month", month)
        files = {p.stem: p.read_text() for p in (tmp_path / "state").rglob(f"{month}/*.txt")}
        kinds = {
            name: [row.split("\t")[2] for row in text.splitlines() if row[:4].isdigit()]
            for name, text in files.items()
        }
        assert kinds["beta"] == ["premium-MO", "premium-answer"], files
        assert kinds["acme"] == [], files


async def test_a_kept_vote_of_a_billed_month_moves_to_the_new_client_as_a_correction(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.now = at(2027, 1, 30, 12)
    beta = w.store.accounts.add_account("beta")
    sid = w.service(verified=False)
    await w.mo("KP123 kept vote")
    w.now = at(2027, 2, 1, 0, 5)
    await bill(w, JAN)  # January lists it acme's, pending

    w.now = at(2027, 2, 3, 12)
    w.r.update_service(sid, account_id=beta.id, email=NEW, verified_at=w.now)  # as `premium set` and
    w.r.set_acl(sid, [NEW])  # the confirmation leave it
    assert handlers.forward_awaiting(w.store, w.config, w.r.service(sid)) == 1  # type: ignore[arg-type]
    assert [o[2] for o in w.outbox("premium")] == [NEW]

    # January stays as billed; February takes it from acme and books it beta's, delivered.
    feb = acme_file(w, FEB)
    assert [(m["status"], m["price_pln"], m["commission_pln"]) for m in feb.sms] == [
        ("pending", "-3.00", "-1.10")
    ]
    booked = w.store.db.conn.execute(
        "SELECT account_id, sms, commission, status FROM premium_corrections ORDER BY id"
    ).fetchall()
    assert booked == [(w.account.id, -1, -110, "pending"), (beta.id, 1, 110, "delivered")]

    # Beta's client, who got it, answers it in beta's name; the answer is beta's.
    reply, sent = w.answer("Thanks from beta", sender=NEW)
    assert sent, reply
    account = w.store.db.conn.execute("SELECT account_id FROM emails ORDER BY id DESC LIMIT 1").fetchone()
    assert account == (beta.id,)
