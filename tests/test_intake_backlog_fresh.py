"""The queue's high-water mark as an intake worker judges it: by the daemon's latest count, not one
a heartbeat late (F7). The daemon's side in this process, a real worker process, a real SMTP client."""

from __future__ import annotations

import asyncio
import smtplib
from collections import Counter
from pathlib import Path

from gateway.config import parse_config
from gateway.intake_workers import IntakeWorkers, bind_listeners
from gateway.queuedepth import Backlog
from gateway.smtp.accept import Writes
from tests.conftest import DOMAIN, STAFF, free_port, mail
from tests.test_intake_workers import serving_store, worker_config_text


def send_in_a_row(port: int, count: int) -> list[int]:
    """`count` mails, one after another on one connection: each one's reply code."""
    codes = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for i in range(count):
            rcpt = f"60112{i:04d}@{DOMAIN}"
            try:
                client.send_message(mail(rcpt, f"In a row {i}"), STAFF, [rcpt])
                codes.append(250)
            except smtplib.SMTPDataError as exc:
                codes.append(exc.smtp_code)
    return codes


async def test_a_count_past_the_mark_refuses_the_next_mail_through_the_worker(tmp_path: Path) -> None:
    # The dispatcher's count goes past the mark as the first mail is committed. The next mails of the
    # same client, sent at once, are refused 451 as the relay port in the daemon refuses them: the
    # worker heard the count only with the answer to its next heartbeat, once a second, and took up
    # to a second's more mail past the mark than the daemon's own relay port.
    text = worker_config_text(tmp_path, free_port(), 0, 1, queue_high_water=3)
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    store = serving_store(cfg)
    backlog = [Backlog()]

    def counted() -> None:  # the dispatcher, woken by the commit, counts the queue past the mark
        backlog[0] = Backlog(6, everyone=True)

    listeners = bind_listeners("127.0.0.1", 0)
    port = listeners[0].getsockname()[1]
    workers = IntakeWorkers(
        cfg, listeners, writes=Writes(cfg, store, counted), backlog=lambda: backlog[0], replies=Counter()
    )
    run = asyncio.create_task(workers._run(workers.slots[0]))
    try:
        await workers.wait_ready()
        assert await asyncio.to_thread(send_in_a_row, port, 6) == [250, 451, 451, 451, 451, 451]
        assert store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone() == (1,)
    finally:
        await workers.stop()
        await asyncio.wait_for(run, 30)
        store.close()
