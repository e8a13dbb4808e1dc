"""Phones whose queue at the SMSC is full (every submit to them answered ESME_RMSGQFUL, 0x14) among SMS
to other phones the SMSC takes: how fast the others go, printed as figures.

One SMPP link (`--rate` SMS/s, the default one-second throttle pause) to a fake SMSC over TCP that
answers 0x14 to every submit to the `--full` full phones and takes every other one. The first full
phone's SMS is sent first, then `--others` SMS to other phones in mails of 50, the other full phones
spread among them, the last in the last mail. The figures: the time from the others' first submit to
their last (or how many went within `--seconds`), their rate, the link's rate at the end and its
lowest, the throttled answers and the 0x14 answers; then the same `--after` seconds later, the full
phones' SMS still retrying on the link with nothing else to send: the rate the next traffic meets.

Usage: python bench/queue_full_phone.py [--others 300] [--full 1] [--rate 100] [--seconds 60] [--after 20]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config import parse_config  # noqa: E402
from smsc.simulator.core import SubmittedSms  # noqa: E402
from smsc.simulator.smpp_server import SmppSession  # noqa: E402
from tests.conftest import DOMAIN, config_text, mail, running_gateway  # noqa: E402
from tests.fakes.smsc import FakeSMSC  # noqa: E402

PER_MAIL = 50
ESME_RMSGQFUL = 0x14


class FullPhonesSMSC(FakeSMSC):
    """Answers 0x14 to every submit to one of `full` (E.164 numbers); takes every other one."""

    def __init__(self, full: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full, self.refused = full, 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.destination in self.full:
            self.refused += 1
            session.answer_submit(seq, None, status=ESME_RMSGQFUL)
        else:
            await super().on_submit(session, seq, sms)


async def run(others: int, full: int, rate: int, seconds: float, after: float) -> None:
    phones = [f"6011599{i:02d}@{DOMAIN}" for i in range(full)]  # the others are 60116xxxx
    with tempfile.TemporaryDirectory() as tmp:
        async with FullPhonesSMSC({"+48" + phone.split("@")[0] for phone in phones}) as smsc:
            text = config_text(Path(tmp), smsc_port=smsc.port)
            text = text.replace("max_per_second = 1000", f"max_per_second = {rate}")
            text = text.replace("throttle_pause_seconds = 0.05", "throttle_pause_seconds = 1")
            async with running_gateway(parse_config(text, source="bench", base_dir=Path(tmp))) as gw:
                pacer = gw.daemon.dispatcher.pacers["main"]
                if phones:  # the first full phone's SMS waits already; the others' come among the rest
                    assert (
                        await gw.send(mail(phones[0], "Your phone's queue is full"), phones[:1])
                    ).error is None
                    while smsc.refused == 0:
                        await asyncio.sleep(0.01)
                mails = -(-others // PER_MAIL)
                spread = {round(k * mails / (full - 1)): phones[k] for k in range(1, full)}  # the last, last
                for n, start in enumerate(range(0, others, PER_MAIL), 1):
                    rcpts = [f"60116{i:04d}@{DOMAIN}" for i in range(start, min(others, start + PER_MAIL))]
                    rcpts += [spread[n]] if n in spread else []
                    res = await gw.send(mail(rcpts, "The plant is closed today"), rcpts)
                    assert res.error is None and not res.refused, res
                began = time.monotonic()
                lowest = pacer.rate
                while len(smsc.received) < others and time.monotonic() - began < seconds:
                    lowest = min(lowest, pacer.rate)
                    await asyncio.sleep(0.01)
                took = time.monotonic() - began
                sent = len(smsc.received)
                throttled = gw.daemon.dispatcher.links["main"].stats().throttled
                print(f"others sent: {sent}/{others} in {took:.1f} s, {sent / took:.1f}/s (at most {rate}/s)")
                print(f"link rate at the end: {pacer.rate:.1f}/s, lowest: {lowest:.1f}/s")
                print(f"0x14 answers to {full} full phones: {smsc.refused}, read as throttles: {throttled}")
                # The full phones' SMS still retry on the link, idle now: what rate the next traffic meets.
                await asyncio.sleep(after)
                throttled = gw.daemon.dispatcher.links["main"].stats().throttled
                print(f"{after:.0f} s later: link rate {pacer.rate:.1f}/s, 0x14 answers {smsc.refused},"
                      f" read as throttles {throttled}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--others", type=int, default=300)
    parser.add_argument("--full", type=int, default=1)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=20.0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    asyncio.run(run(args.others, args.full, args.rate, args.seconds, args.after))


if __name__ == "__main__":
    main()
