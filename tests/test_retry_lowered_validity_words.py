"""`queue retry` of an SMS that expired under its account's validity, lowered then (1 hour) and raised
since (24 hours): the refusal said "its mail's Expiry-Date set it (the sender said its text is stale
by then)" of a mail that had no Expiry-Date. The gateway keeps neither the header nor the validity in
force at acceptance: the refusal names both causes. The daemon (no SMSC answering), the CLI as a
process, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.store.db import Store
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.test_cli_errors import run


async def test_a_retry_refused_under_a_raised_validity_does_not_claim_an_expiry_date(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    config.chmod(0o640)
    cfg = parse_config(config.read_text(), source="test", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", validity_hours=1))
        assert (await gw.send(mail(f"601123901@{DOMAIN}", "Invoice ready"))).error is None  # no Expiry-Date
    store = Store.open(cfg.db_path)
    try:
        conn, shift = store.db.conn, 2 * 3600
        with store.db.transaction():
            conn.execute(
                "UPDATE messages SET created_at = created_at - ?, expires_at = expires_at - ?", (shift,) * 2
            )
            conn.execute(
                "UPDATE parts SET next_attempt_at = next_attempt_at - ?, expires_at = expires_at - ?",
                (shift,) * 2,
            )
        store.queue.expire_due()
        [(mid, state)] = conn.execute("SELECT id, state FROM messages").fetchall()
        assert state == "expired"
    finally:
        store.close()
    assert run(config, "account", "set", "acme", "--validity-hours", "24").returncode == 0
    res = run(config, "queue", "retry", str(mid))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "its mail's Expiry-Date set it" not in res.stderr, res.stderr
    assert "or by a lower validity of its account when it came" in res.stderr, res.stderr
