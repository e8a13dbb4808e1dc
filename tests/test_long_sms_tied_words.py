"""What `queue show` says of the rest of a long SMS tied to a link that is up and refuses it for now
(ESME_RSYSERR): "waiting: next try HH:MM, after the error above", nothing naming the link the SMS
waits for nor that it goes again whole by another link after LONG_SMS_WAIT_SECONDS; the link-down case
named it. Real SMPP SMSCs over TCP, the daemon in-process, `smsgw queue show` as a process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import load_config
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER
from tests.test_long_sms_tied_wait import PartTwoRefused
from tests.test_policy import to
from tests.test_process import smsgw


async def test_queue_show_names_the_link_a_refused_part_waits_for_and_the_move(tmp_path: Path) -> None:
    async with PartTwoRefused() as plus, HappySMSC() as orange:
        orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
        orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
        text = config_text(tmp_path, smsc_port=plus.port, smsc_extra='prefixes = ["+48601"]\n' + orange_link)
        text = text.replace('name = "main"', 'name = "plus"', 1).replace("window = 10", "window = 1", 1)
        path = tmp_path / "config.toml"
        path.write_text(text)
        path.chmod(0o640)
        async with running_gateway(load_config(path)) as gw:
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await plus.wait_until(lambda: plus.refused >= 1, timeout=20)
            sql = "SELECT COUNT(*) FROM parts WHERE seq = 2 AND state = 'deferred'"
            await gw.until(lambda: gw.store.db.conn.execute(sql).fetchone()[0] == 1)
            message_id = gw.store.db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
    said = (
        "held for link plus, which took part 1 of this SMS: the rest go by that link alone (a phone joins"
        " no parts from two SMSCs); should it refuse them or stay down for 120 s while another link for"
        " the number is up, the whole SMS goes again by that other link under a new reference"
    )
    assert said in " ".join(shown.stdout.split()), shown.stdout
