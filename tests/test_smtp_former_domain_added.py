"""A domain added while another dropped one is held is kept as served: dropped in turn later, its
conversations are found (the 551 naming the address to write to, the check-config warning); it was
never kept, and its mail heard "Relay access denied" for a day (the workers and check-config: for good).
The daemon and the CLI on a real SQLite file, a real SMTP client against the relay port.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_cli_errors import run
from tests.test_session_limits import blocking
from tests.test_smtp_former_domains import moved, rcpts, renamed

NEW = "sms.new.example"


async def test_domain_added_while_one_is_held(tmp_path: Path) -> None:
    path, _, text = renamed(tmp_path)  # conversations on OLD, config serves DOMAIN
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)):
        pass  # keys: served [DOMAIN, OLD], held [OLD]
    both = text.replace(f'domains = ["{DOMAIN}"]', f'domains = ["{DOMAIN}", "{NEW}"]', 1)
    path.write_text(both)
    cfg = parse_config(both, source="test", base_dir=tmp_path)
    async with running_gateway(cfg):
        pass  # NEW served now
    store = Store.open(cfg.db_path)
    try:  # an SMS sent from NEW while it was served
        ConversationsRepo(store.db, store.clock).record_mt(
            phone="+48601999888",
            number="+48100200300",
            user_email=STAFF,
            account_id=None,
            domain=NEW,
            header_message_id=None,
            subject=None,
            text="hi",
        )
    finally:
        store.close()
    path.write_text(text)  # NEW dropped again
    check = run(path, "check-config")
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        former = gw.daemon.gate.former_domains
        answer = await blocking(lambda: rcpts(gw.port, [f"+48601999888@{NEW}"]))
    assert NEW in check.stderr and NEW in former, (check.stderr, former, answer)
    assert answer == [moved(f"+48601999888@{NEW}", NEW, f"+48601999888@{DOMAIN}")]
