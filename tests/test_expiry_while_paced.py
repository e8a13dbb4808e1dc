"""A part whose validity ends while it waits for its link's pacing is not sent: it ends as expired, and
its sender gets the expiry bounce, as for a part found expired when it is claimed (R-1.10).

Defect: expiry was looked at only when a part was claimed. Parts claimed ahead and waiting for a slow
link's rate went out later with an SMPP validity_period already past (a window of 10 at 0.4/s is 25 s
of waiting), and the status panel showed "Valid until 15:36:09" beside "submitted 15:36:10". Then each
such part still spent the rate token it had waited for, and held the next SMS as long.

A real daemon on an injected clock, mail through a real SMTP client, the SMPP simulator over TCP, a real
SMTP server taking the bounces; the link's pacing runs on real seconds (1 submit a second).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.pdu import read_smpp_time
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

DAY = 24 * 3600.0
NUMBERS = [f"60112370{i}" for i in range(4)]


class Clock:
    """The daemon's clock: the real one moved by `skew`, so that links and timers still run."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


class WatchedSMSC(HappySMSC):
    """Notes the daemon's time at each submit it gets, beside the validity the submit carries."""

    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.arrivals: list[tuple[str, float, float]] = []  # (destination, daemon time, valid until)

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        # `YYMMDDhhmmss000R`, relative, as the gateway sends it: the time left on the daemon's clock
        now = self.clock()
        until = read_smpp_time(sms.validity, datetime.fromtimestamp(now, UTC))
        assert until is not None, sms.validity
        self.arrivals.append((sms.destination, now, until.timestamp()))
        await super().on_submit(session, seq, sms)


async def test_a_part_whose_validity_ends_while_it_waits_for_its_pacing_is_expired_not_sent(
    tmp_path: Path,
) -> None:
    sink_port = free_port()
    clock = Clock()
    async with WatchedSMSC(clock) as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        text = text.replace("max_per_second = 1000", "max_per_second = 1")
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path), clock) as gw:
            rcpts = [f"{n}@{DOMAIN}" for n in NUMBERS]
            assert (await gw.send(mail(rcpts, "Door code 4711, today only"), rcpts)).error is None
            # One submit a second: the first goes at once, the other three are claimed (the window
            # has room for all) and wait for their tokens. Their validity (the account's day) ends now.
            await smsc.wait_for(1)
            clock.skew = DAY + 60
            await gw.until(lambda: all(s not in ("queued", "active") for s in part_states(gw)), timeout=15)
            # Nothing went for the expired ones, so their tokens came back: the link may submit now
            # (it took a token for each and held the next SMS a second per expired part).
            ready_now = gw.daemon.dispatcher.pacers["main"].try_ready()
            states = dict(part_rows(gw))
            expired = sorted(n for n, s in states.items() if s == "expired")
            if expired:
                await gw.until(lambda: bounced(sink) >= set(expired), timeout=10)
    # No SMSC got a submit whose validity had ended (sent as the shortest relative one, 1 s).
    late = [(n, at, until) for n, at, until in smsc.arrivals if until <= at + 1]
    assert late == [], late
    assert expired, states  # some waited past their validity: the test saw the case it is about
    assert ready_now
    assert len(smsc.arrivals) + len(expired) == len(NUMBERS), (smsc.arrivals, states)
    for _frm, _to, raw in sink.messages:
        assert b"Status: 5.4.7" in raw  # the expiry's bounce, as a part found expired at its claim gets


def part_rows(gw: Any) -> list[tuple[str, str]]:
    return gw.store.db.conn.execute("SELECT destination, state FROM parts ORDER BY id").fetchall()


def part_states(gw: Any) -> list[str]:
    return [s for _n, s in part_rows(gw)]


def bounced(sink: Any) -> set[str]:
    """The numbers the bounces in the sink name."""
    found = set()
    for _frm, _to, raw in sink.messages:
        text = message_from_bytes(raw, policy=policy.default).as_string()
        found.update(f"+48{n}" for n in NUMBERS if n in text)
    return found
