"""A user added while the machine's clock ran ahead (a VM started before its time was set, then
corrected by NTP) keeps its answers and its reports.

The gateway tells a new holder of an address from the user who sent an SMS by the times stored: a
user added after the mail came is someone else (R-3.3, README "Two-way SMS"). A user added with the
clock 26 days ahead read as added after every mail of the following 26 days: the phone's answers
went to the fallback address and the bounce of a failed SMS was not sent at all ("the address was
added again as a user after the mail came"). The config's [[account]] block adds the user at the
first start, on the daemon's injected clock; the second start has the right time. Real daemon, the
built-in simulator over SMPP, a real SMTP relay on 127.0.0.1, the SQLite file.
"""

from __future__ import annotations

import time
from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import mo_row, outbox

AHEAD = 26 * 86400


async def test_a_user_added_while_the_clock_ran_ahead_gets_answers_and_bounces(tmp_path: Path) -> None:
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: time.time() + AHEAD) as gw:
        sql = "SELECT created_at FROM users WHERE email = ?"
        (added,) = gw.store.db.conn.execute(sql, (STAFF,)).fetchone()
        assert added > time.time() + AHEAD - 60
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak, bede"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: outbox(gw) and outbox(gw)[-1][2] == "sent")
        assert outbox(gw) == [("reply", STAFF, "sent")]  # to the user, not to the fallback
        assert mo_row(gw)[0] != "fallback"
        # A failed SMS (the simulator fails numbers ending 13 by report): its bounce goes to the user.
        failed = mail(f"601120013@{DOMAIN}", body="Wyniki", subject="Wyniki")
        assert (await gw.send(failed)).error is None
        await gw.until(lambda: any(rcpts == [STAFF] for _, rcpts, _ in sink.messages[1:]))
        assert not any(FALLBACK in rcpts for _, rcpts, _ in sink.messages)


async def test_the_answers_still_reach_the_user_once_the_clock_passes_their_time_of_adding(
    tmp_path: Path,
) -> None:
    # The same user, the clock corrected: an SMS an hour before the time of adding it stored, and the
    # phone's answer once the clock has passed that time. The times alone said "added again after
    # the SMS" and the answer went to the fallback, though nobody was removed or added since.
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: time.time() + AHEAD):
        pass
    offset = [AHEAD - 3600]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: time.time() + offset[0]) as gw:
        core = gw.daemon.simulator.core
        sms = mail(f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(sms)).error is None
        await gw.until(lambda: len(core.records) == 1)
        offset[0] = AHEAD + 120
        command = {"op": "mo", "reply_to_last": True, "text": "Tak, bede"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: bool(outbox(gw)) and outbox(gw)[-1][2] == "sent")
        assert outbox(gw) == [("reply", STAFF, "sent")]
