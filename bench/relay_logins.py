"""The outbox at a healthy relay whose AUTH answers slowly (a password backend such as LDAP taking
seconds): how long `--mails` mails take from the first AUTH, how many logins went at once, and
whether any mail was deferred.

The relay (aiosmtpd, in this process) offers CRAM-MD5, which it refuses every account with as
Dovecot keeping hashed passwords does, PLAIN and LOGIN (`--no-cram`: PLAIN and LOGIN alone), and
answers each AUTH after `--auth-delay` seconds. The real outbox worker sends with its eight slots
and the mailer's kept sessions. The first login after a start goes alone; once it found the
mechanism, the others go three at a time (`gateway.mailauth.LOGINS_AT_ONCE`). Logins one at a time
throughout took some 40 s for 200 mails at 5 s an AUTH, and deferred some as timeouts.

Usage: python bench/relay_logins.py [--mails 200] [--auth-delay 5] [--no-cram]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword  # noqa: E402
from structlog.testing import capture_logs  # noqa: E402

from gateway.mailer import SmtpRelayMailer  # noqa: E402
from gateway.outboxworker import OutboxWorker  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from tests.conftest import Sink, free_port  # noqa: E402
from tests.test_relay_probe_mechanism import login_config  # noqa: E402


class Auths:
    """Each AUTH's start and end time and outcome, and the most at once."""

    def __init__(self) -> None:
        self.going = 0
        self.most = 0
        self.tries: list[tuple[float, str, bool]] = []

    def __call__(self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        right = isinstance(data, LoginPassword) and data.password == b"right"
        self.tries.append((time.perf_counter(), mechanism, right))
        return AuthResult(success=right, handled=False)


def relay_class(auths: Auths, delay: float, cram: bool) -> type[SMTP]:
    class SlowRelay(SMTP):
        async def smtp_AUTH(self, arg: str) -> None:
            auths.going += 1
            auths.most = max(auths.most, auths.going)
            try:
                await asyncio.sleep(delay)
                await super().smtp_AUTH(arg)
            finally:
                auths.going -= 1

        async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
            await self.challenge_auth("<1.2@relay.test>")
            auths.tries.append((time.perf_counter(), "CRAM-MD5", False))
            return AuthResult(success=False, handled=False)

    if not cram:
        del SlowRelay.auth_CRAM__MD5
    return SlowRelay


async def run(mails: int, delay: float, cram: bool) -> None:
    port = free_port()
    auths, sink = Auths(), Sink()
    relay = relay_class(auths, delay, cram)
    server = await asyncio.get_running_loop().create_server(
        lambda: relay(sink, hostname="relay.test", authenticator=auths, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    with tempfile.TemporaryDirectory() as tmp:
        cfg = login_config(Path(tmp), port)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(cfg.db_path)
        for n in range(mails):  # one recipient each: every slot may take one
            store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", b"Subject: a\r\n\r\nx\r\n")
        mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right")
        worker = OutboxWorker(store, mailer)
        start = time.perf_counter()
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            while len(sink.messages) < mails and time.perf_counter() - start < 600:
                await asyncio.sleep(0.05)
            took = time.perf_counter() - start
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await mailer.close()
        store.close()
    server.close()
    await server.wait_closed()
    deferred = [e.get("error") for e in logs if e["event"] == "mail.deferred"]
    refused = sum(1 for _t, _m, ok in auths.tries if not ok)
    print(
        f"{mails} mails, AUTH {delay:g} s, CRAM-MD5 {'offered (refused)' if cram else 'not offered'}:"
        f" {len(sink.messages)} sent in {took:.1f} s; {len(auths.tries)} AUTH ({refused} refused),"
        f" at most {auths.most} at once; deferred {len(deferred)} {sorted(set(map(str, deferred)))[:3]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--auth-delay", type=float, default=5.0)
    parser.add_argument("--no-cram", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.mails, args.auth_delay, not args.no_cram))


if __name__ == "__main__":
    main()
