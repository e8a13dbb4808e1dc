"""The relay sessions kept open between mails, as Postfix's SMTP connection cache keeps them.

Each outgoing mail had its own connection: greeting, EHLO, STARTTLS and its handshake, AUTH, one
transaction, QUIT; the 41 failure notices of one bulk send were 41 TLS handshakes at the relay.
A session whose transaction ended (the dot answered 250, or a refusal the relay took calmly) is
kept here for the next mail instead, which begins it with RSET (`gateway.mailer`). Only established
sessions are kept, each with the TLS it was set up with; a new one is set up as before, reading the
CA file again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiosmtplib

# A session unused this long is closed with QUIT: relays drop idle clients themselves (Postfix's
# smtpd_timeout, 300 s; many far sooner under load), and each idle connection holds one of the
# relay's process slots (Postfix's default_process_limit, 100) that other clients may need. A few
# seconds still take a burst of notices or bounces on one connection. Postfix's own client keeps a
# session for smtp_connection_cache_time_limit, 2 s.
IDLE_SECONDS = 5.0
# Mails sent on one session before it is closed and a new one made, as Postfix's
# smtp_connection_reuse_count_limit: a steady stream of mail would keep one session for ever, and
# the relay's process serving it takes a changed config or a renewed certificate only with the
# next connection.
MAILS_PER_SESSION = 100
# Sessions kept idle at most: the outbox worker's sends at a time (`OutboxWorker` concurrency,
# 8). A session is kept only by the send that used it, so no more are idle than sent at once.
IDLE_SESSIONS = 8
QUIT_TIMEOUT = 5.0  # the relay's answer to QUIT, at an idle close or at the daemon's stop


@dataclass(eq=False)
class RelaySession:
    """An established session to the relay (greeted, TLS as set up, logged in) and its mails."""

    client: aiosmtplib.SMTP
    mails: int = 0  # transactions ended on it
    closer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        """Not closed by either side: a relay that closed it while idle was read as EOF."""
        return self.client.is_connected


async def quit_session(client: aiosmtplib.SMTP, timeout: float = QUIT_TIMEOUT) -> None:
    """QUIT, and the connection closed whatever the relay answers, as aiosmtplib's `async with`
    ends a session."""
    try:
        if client.is_connected:
            await client.quit(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


class IdleSessions:
    """The sessions waiting for the next mail, newest first out; each closed with QUIT after
    `idle_seconds` unused, after `mails_per_session` mails, or by `close` at the daemon's stop."""

    def __init__(
        self,
        idle_seconds: float = IDLE_SECONDS,
        mails_per_session: int = MAILS_PER_SESSION,
        limit: int = IDLE_SESSIONS,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.mails_per_session = mails_per_session
        self.limit = limit
        self._idle: list[RelaySession] = []
        self._quitting: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._idle)

    def take(self) -> RelaySession | None:
        """The session used last that is still open, or None for a new connection."""
        while self._idle:
            session = self._idle.pop()
            if session.closer is not None:
                session.closer.cancel()
                session.closer = None
            if session.alive:
                return session
            session.client.close()
        return None

    async def keep(self, session: RelaySession) -> None:
        """Kept for the next mail, or ended with QUIT now when it has sent its share of mails,
        when enough are idle, or once the daemon stops."""
        if (
            self._closed
            or not session.alive
            or session.mails >= self.mails_per_session
            or len(self._idle) >= self.limit
        ):
            await quit_session(session.client)
            return
        loop = asyncio.get_running_loop()
        session.closer = loop.call_later(self.idle_seconds, self._expire, session)
        self._idle.append(session)

    def _expire(self, session: RelaySession) -> None:
        if session not in self._idle:
            return
        self._idle.remove(session)
        session.closer = None
        task = asyncio.get_running_loop().create_task(quit_session(session.client), name="relay-quit")
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    async def close(self) -> int:
        """QUIT on every idle session, and on any session a send ends from now on; how many were
        idle. Waits for the idle closes begun before, so the relay has heard QUIT on each."""
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            if session.closer is not None:
                session.closer.cancel()
        await asyncio.gather(*(quit_session(s.client) for s in idle), *self._quitting, return_exceptions=True)
        return len(idle)
