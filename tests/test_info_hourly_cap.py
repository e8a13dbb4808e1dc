"""R-2.3's info@ answers at most `inforeply.PER_HOUR` times an hour to one address, as postmaster@'s
forwards are capped (`gateway.smtp.hourcap`): 30 empty mails to info@ in one session had 30 answers.

Real SMTP against the running daemon (one session, as the flood came), the answers caught by a real
SMTP sink; the clock is injected to pass the hour.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import datetime
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.smtp import hourcap, inforeply
from gateway.store import forwardsteps
from tests.conftest import STAFF, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import DAY
from tests.test_policy import Clock, to


def asked(port: int, times: int) -> list[tuple[int, str]]:
    """`times` empty mails to info@ in one session: each DATA's reply."""
    said = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        for n in range(times):
            client.mail(STAFF)
            client.rcpt(to("info"))
            code, text = client.data(f"From: {STAFF}\r\nTo: {to('info')}\r\nMessage-ID: <i{n}@x>\r\n\r\n")
            said.append((code, text.decode()))
    return said


async def test_a_flood_of_mail_to_info_gets_the_hours_answers_and_then_451(tmp_path: Path) -> None:
    relay = free_port()
    clock = Clock(datetime.now())
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg, clock) as gw:
            said = await asyncio.to_thread(asked, gw.port, inforeply.PER_HOUR + 3)
            assert [code for code, _ in said] == [250] * inforeply.PER_HOUR + [451] * 3, said
            busy = hourcap.busy(to("info"), "info")
            assert [f"{code} {text}" for code, text in said[inforeply.PER_HOUR :]] == [busy] * 3
            await sink.wait(inforeply.PER_HOUR)
            await asyncio.sleep(0.5)
            assert len(sink.messages) == inforeply.PER_HOUR
            assert all(rcpts == [STAFF] for _f, rcpts, _c in sink.messages)
            # An hour on, the user is answered again.
            clock.t += hourcap.WINDOW_SECONDS + 1
            assert [code for code, _ in await asyncio.to_thread(asked, gw.port, 1)] == [250]
            await sink.wait(inforeply.PER_HOUR + 1)


def spelled(times: int) -> list[str]:
    """The user's address in `times` cases of its local part, as a mail server may write it."""
    local, _, domain = STAFF.partition("@")
    return [
        "".join(c.upper() if (k >> i) & 1 else c for i, c in enumerate(local)) + "@" + domain
        for k in range(times)
    ]


def asked_as(port: int, senders: list[str]) -> list[int]:
    """One empty mail to info@ from each of `senders`, in one session: each DATA's reply code."""
    said = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        for n, sender in enumerate(senders):
            client.mail(sender)
            client.rcpt(to("info"))
            said.append(client.data(f"From: {sender}\r\nTo: {to('info')}\r\nMessage-ID: <c{n}@x>\r\n\r\n")[0])
    return said


async def test_the_cap_counts_the_users_address_in_any_case(tmp_path: Path) -> None:
    """Users are found by their address in any case; four cases of it had 20 answers against a cap of 5."""
    relay = free_port()
    clock = Clock(datetime.now())
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg, clock) as gw:
            senders = [s for s in spelled(4) for _ in range(inforeply.PER_HOUR)]
            assert len(set(senders)) == 4
            said = await asyncio.to_thread(asked_as, gw.port, senders)
            assert said == [250] * inforeply.PER_HOUR + [451] * (len(senders) - inforeply.PER_HOUR), said
            await sink.wait(inforeply.PER_HOUR)


async def test_a_step_forward_of_the_clock_does_not_end_the_hour_of_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hour counted from the clock: a step forward (NTP setting right a clock days behind) made the
    hour's answers read as days old, and the flood had the cap's answers again at once."""
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # the step is seen soon
    relay = free_port()
    clock = Clock(datetime.now())
    stepped = [0.0]  # the steps of the clock: no time passed in them
    async with HappySMSC() as smsc, smtp_sink(relay):
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg, clock, lambda: clock.t - stepped[0]) as gw:
            said = await asyncio.to_thread(asked, gw.port, inforeply.PER_HOUR)
            assert [code for code, _ in said] == [250] * inforeply.PER_HOUR, said
            clock.t += 8 * DAY
            stepped[0] += 8 * DAY
            await gw.until(lambda: forwardsteps.kept_steps(gw.store.db.conn) != [])
            clock.t += 60.0  # a minute passes
            assert [code for code, _ in await asyncio.to_thread(asked, gw.port, 1)] == [451]
            clock.t += hourcap.WINDOW_SECONDS  # an hour passes
            assert [code for code, _ in await asyncio.to_thread(asked, gw.port, 1)] == [250]
