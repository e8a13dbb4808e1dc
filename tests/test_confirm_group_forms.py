"""One mail, one RCPT asking NOTIFY=SUCCESS, another without NOTIFY, the account on
dlr_mail = all: the sender is owed one receipt (a DSN, from <>) and one plain notice, never one mail
holding both: a row joins another only of its own family, told by its envelope sender too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_confirm_group import DELIVERED, every_outcome, outbound
from tests.test_dsn_notify import transaction


async def test_a_receipt_and_a_notice_to_one_address_stay_two_mails(tmp_path: Path) -> None:
    sink_port = free_port()
    asked, plain_one, plain_two = DELIVERED
    async with FakeSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await every_outcome(gw)
            rcpts = [
                (asked, ["NOTIFY=SUCCESS", f"ORCPT=rfc822;{asked}"]),
                (plain_one, []),
                (plain_two, []),
            ]
            body = mail(DELIVERED, "Gate code 4711", subject="Gate").as_bytes()
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body)
            assert said["DATA"][0] == 250, said
            await gw.until(lambda: gw.states() == ["delivered"] * 3)
            await sink.wait(2, timeout=30)
    kinds = sorted((sender, msg.get_content_type()) for sender, msg in outbound(sink))
    assert kinds == [("<>", "multipart/report"), (cfg.mail.from_address, "text/plain")], kinds
