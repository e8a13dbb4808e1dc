"""The billing mails an operator saves into one folder keep every account's file: each attachment's
name is its account's alone (also on a file system blind to case), and the mail's text names the
file by the name it is attached under. Mailed by the running daemon to a real SMTP sink."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from gateway.store.db import Store
from tests.billing_world import at, fill, prepare
from tests.conftest import free_port, running_gateway, smtp_sink

NAMES = ['Żółw "Spółka"; Sp. z o.o.', "Łódź", "Lodz", "A/B", "AB", "日本", "ACME", "Acme", "summary"]


async def test_each_account_s_attachment_has_its_own_name_and_the_text_names_it(tmp_path: Path) -> None:
    relay = free_port()
    _, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 14, 12)]})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 1, 5))
    try:
        ids = {name: store.accounts.add_account(name).id for name in NAMES}
        for account_id in ids.values():
            fill(store, account_id, [at(2026, 2, 14, 12)])
    finally:
        store.close()
    admin = cfg.mail.admin_address
    expected = len(NAMES) + 3  # every account's file (acme's also to billing@acme.pl) and the summary
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: at(2026, 3, 2, 9)) as gw:
            await gw.until(lambda: len(sink.messages) == expected)
        named: dict[str, str] = {}  # the attachment's name -> the account whose mail it came in
        for _, rcpts, raw in sink.messages:
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            subject = str(msg["Subject"])
            if rcpts != [admin] or subject.endswith("account(s)"):
                continue
            account = subject.removeprefix("SMS billing 2026-02: ")
            attachment = next(msg.iter_attachments()).get_filename()
            assert attachment is not None
            body = msg.get_body(("plain",))
            assert body is not None
            text = body.get_content()
            assert f"The attached file {attachment} lists" in " ".join(text.split()), (attachment, text)
            assert attachment.casefold() not in {n.casefold() for n in named}, (account, attachment, named)
            named[attachment] = account
    assert len(named) == len(NAMES) + 1
    assert named["2026-02-Lodz.txt"] == "Lodz" and named["2026-02-AB.txt"] == "AB"  # their own names
    assert named[f"2026-02-Lodz~{ids['Łódź']}.txt"] == "Łódź"
    assert named[f"2026-02-AB~{ids['A/B']}.txt"] == "A/B"
    assert named[f"2026-02-billing~{ids['日本']}.txt"] == "日本"
    assert named[f"2026-02-Zolw Spolka; Sp. z o.o~{ids[NAMES[0]]}.txt"] == NAMES[0]
    assert named[f"2026-02-ACME~{ids['ACME']}.txt"] == "ACME"  # one folder on Windows holds one of
    assert named[f"2026-02-Acme~{ids['Acme']}.txt"] == "Acme"  # ACME.txt and Acme.txt
    assert named[f"2026-02-summary~{ids['summary']}.txt"] == "summary"  # not the operator's summary
    assert named["2026-02-acme~1.txt"] == "acme"
    assert all(re.fullmatch(r"2026-02-[ -~]+\.txt", n) for n in named)  # plain ASCII, as before
