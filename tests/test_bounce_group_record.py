"""Where a bounce naming several SMS of one mail is listed in the mail's record (R-2.5).

`smsgw queue show` and the panel's message page list the mails sent about an SMS. A bounce naming
several numbers of a mail is about those SMS alone: listed under every SMS of the mail, it showed
under a delivered one as if that had bounced too.

Real peers: a real SMTP client, the daemon in this process, the simulator over SMPP refusing one
number at submit and reporting another undeliverable, a real SMTP server taking the bounce, the CLI
as a process, a real SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from gateway.store.outboxgroups import GROUP_KIND
from tests.conftest import STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_bounce_group import DELIVERED, REJECTED, UNDELIVERABLE, all_sent, outbox_rows
from tests.test_bounce_group_retry import message_id
from tests.test_process import smsgw


async def test_a_bounce_of_several_numbers_is_listed_under_the_sms_it_names_alone(tmp_path: Path) -> None:
    path, sink_port = tmp_path / "config.toml", free_port()
    async with FakeSMSC(fail_suffixes=["13"], reject_suffixes=["77"]) as smsc, smtp_sink(sink_port) as sink:
        path.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = gw.store.db.conn
            to = [REJECTED, UNDELIVERABLE, DELIVERED]
            assert (await gw.send(mail(to, "Gate code 4711"))).error is None
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "failed", "failed"])
            await sink.wait(1, timeout=30)
            await gw.until(lambda: all_sent([r[1:] for r in outbox_rows(conn)]))
            [(kind, *_rest)] = outbox_rows(conn)
            assert kind == GROUP_KIND
            ids = {address: message_id(conn, address) for address in to}
        done = await asyncio.to_thread(smsgw, path, "queue", "show", str(ids[DELIVERED]))
    assert done.returncode == 0, done.stderr
    sections = sections_of(done.stdout)  # the mail with each of its SMS
    assert sorted(sections) == sorted(ids.values())
    assert sections[ids[DELIVERED]] == []  # it did not bounce
    for address in (REJECTED, UNDELIVERABLE):  # the bounce naming it, about it (not the whole mail)
        assert sections[ids[address]] == [f"mail-sent: {GROUP_KIND} to {STAFF}"], sections


def sections_of(shown: str) -> dict[int, list[str]]:
    """Each SMS's `mail-sent` lines, up to the address, by the SMS's id."""
    out: dict[int, list[str]] = {}
    current: list[str] = []
    for line in shown.splitlines():
        if line.startswith("sms "):
            current = out.setdefault(int(line.split()[1]), [])
        elif line.startswith("mail-sent: "):
            current.append(line.split(",")[0])
    return out
