"""What `smsgw premium set --account` and `premium remove` say of the votes still answerable after the
wall clock stepped forward: what the daemon acts on, a step within the reply window counted as no time
passed (`gateway.store.forwardsteps`).

The daemon took the answer to a vote mailed before a step forward of 8 days (the machine's clock was
8 days behind), while both commands, counting the 8 days as passed, said the vote's 7-day window was
over (no "still answerable" at all), or gave its end 8 days early. The daemon runs for real on a
clock the test steps and the real boot time, the commands in their own processes on its database.
"""

from __future__ import annotations

import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.store import forwardsteps
from gateway.store.db import Store
from smsc.outage import boottime
from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_premium_answer_rules import DAY, Premium
from tests.test_premium_loop import CLIENT, premium_config, reply_to, smtp
from tests.test_premium_moved_service import cli, send

ZONE = ZoneInfo("Europe/Warsaw")  # the test config's [gateway] timezone, in which the commands print


async def test_premium_commands_count_a_step_forward_in_the_reply_window_as_the_daemon_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # the step is seen soon
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    skew = [-8 * DAY]  # the machine's clock is 8 days behind
    async with (
        smtp_sink(relay) as sink,
        running_gateway(cfg, lambda: time.time() + skew[0], boottime) as gw,  # type: ignore[arg-type]
    ):
        w = Premium(gw, sink, path, skew)
        conn = gw.store.db.conn
        await cli(path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        await cli(path, "account", "add", "beta")
        # The client confirms by mail to the address the command names (its confirmation, queued on
        # the command's clock, is 8 days ahead of the daemon's).
        (token,) = conn.execute("SELECT token FROM premium_verifications").fetchone()
        confirm = EmailMessage()
        confirm["From"], confirm["To"], confirm["Subject"] = CLIENT, f"confirm-{token}@{DOMAIN}", "yes"
        confirm.set_content("yes")
        assert (await smtp(gw.port, confirm.as_bytes(), confirm["To"])).error is None  # type: ignore[attr-defined]
        vote = await w.vote()
        (mailed,) = conn.execute("SELECT forwarded_at FROM premium_mo").fetchone()
        skew[0] = 0.0  # NTP sets the clock right: 8 days ahead at once
        await gw.until(lambda: forwardsteps.kept_steps(conn) != [])
        await _commands_say_what_the_daemon_does(w, vote, mailed)


async def _commands_say_what_the_daemon_does(w: Premium, vote: EmailMessage, mailed: float) -> None:
    # Answerable for 7 days of real time: 15 days on the clock after the vote was mailed.
    until = datetime.fromtimestamp(mailed + 15 * DAY, ZONE).strftime("%Y-%m-%d %H:%M:%S")
    out = await cli(w.config, "premium", "set", "KP123", "--account", "beta")
    assert f"stay acme's (the 1 still answerable until {until})" in out, out
    out = await cli(w.config, "premium", "remove", "KP123")
    assert (
        "account acme's client may still answer the 1 SMS mailed to it before the service moved in"
        f" the reply window, as before, until {until}"
    ) in " ".join(out.split()), out
    assert await send(w.gw.port, *reply_to(vote, "Dziekujemy!")) is None  # the daemon takes it
    await w.gw.until(lambda: len(w.sent()) == 1)


@pytest.mark.parametrize(
    "steps",
    [
        [],
        [(8 * DAY + 3600.0, 8 * DAY)],  # (the clock's reading after the step less the vote's, the step)
        [(8 * DAY + 3600.0, 8 * DAY), (10 * DAY + 7200.0, 2 * DAY)],
        [(-600.0, DAY), (3 * DAY + 3600.0, 3 * DAY)],  # one made before the vote, one after it
        [(8 * DAY + 3600.0, 8 * DAY), (0.0, -6 * DAY)],  # a step back that undoes most of it
        [(DAY, DAY), (-DAY, DAY)],  # as no clock makes them (a value edited by hand): still the same
    ],
)
def test_the_end_a_command_shows_is_where_the_daemon_stops_taking_answers(
    tmp_path: Path, steps: list[tuple[float, float]]
) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn, at, window = store.db.conn, 1_800_000_000.0, 7 * DAY
        for reading, seconds in steps:
            if seconds < 0:
                forwardsteps.record_back(conn, -seconds)
            else:
                forwardsteps.record_forward(conn, at + reading, seconds)
        end = forwardsteps.window_end(conn, at, window)
        assert not forwardsteps.past(conn, at, end, window), forwardsteps.kept_steps(conn)
        assert forwardsteps.past(conn, at, end + 1.0, window), (end - at) / DAY
    finally:
        store.close()
