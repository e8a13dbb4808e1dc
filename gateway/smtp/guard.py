"""Limits every SMTP session lives within, on both listeners: connections, line sizes, idle time, commands.

Each open session holds a descriptor and buffers; without a cap, idle or hostile clients use up
the process's descriptors (new clients are then dropped without a word) or its memory. The
limits are checked where the bytes arrive (`data_received`), before aiosmtpd buffers a line, so
an unterminated megabyte costs one read, not a megabyte per client. A limit that bites answers
`421` (RFC 5321 4.3.2: the server closes the channel) and is logged once, rate-limited across
sessions so that a flood of refusals does not become a flood of log lines.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import structlog
from aiosmtpd.smtp import syntax

from acl.logins import client_key
from gateway.smtp import ehloreply, linelimits, replies, sessioninit
from gateway.smtp.closing import ClosingSMTP
from gateway.smtp.commandlines import CommandLines
from gateway.smtp.sessionguard import SessionGuard
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP

log = structlog.get_logger(__name__)

# Commands whose success moves a mail forward, and the reply code that tells the success.
_PROGRESS = {"EHLO": "250", "HELO": "250", "STARTTLS": "220", "AUTH": "235", "MAIL": "250", "RCPT": "250"}


class GuardedSMTP(ClosingSMTP):
    """aiosmtpd's server held to the SessionGuard's limits; the listeners' classes build on it."""

    def __init__(self, *args: Any, guard: SessionGuard, data_size_limit: int, **kwargs: Any) -> None:
        self.guard = guard
        # Be liberal inside DATA: RFC 5321 caps lines at 1000 octets, but real clients send longer
        # HTML lines and bare-LF line ends; the size limit still bounds memory. Before DATA the
        # reader's buffer stays command-sized (aiosmtpd sizes it from line_length_limit). A line
        # over this limit is a mail over the size limit, and is answered so (relay.py).
        self._data_line_limit = max(1001, data_size_limit + 2)
        self.line_length_limit = COMMAND_LINE_CAP + 2
        super().__init__(*args, data_size_limit=data_size_limit, **kwargs)
        # aiosmtpd keeps these in a class-level dict that every EHLO of every session enlarges.
        self.command_size_limits = linelimits.for_keywords(())
        self._advertised: list[str] | None = None  # the keywords of the EHLO reply being made
        self._key: str | None = None  # counted in the guard while set
        self._refusal: str | None = None
        self._in_data = False
        self._data_started = False
        self._count = CommandLines(guard.max_commands)
        self._taken = False  # the mail of the DATA under way was answered 250
        self._proven = False  # a mail of this session was taken: it gives way to nobody
        self._progress = 0.0  # the loop's time of the session's last step that moved a mail forward
        self._since = 0.0  # the loop's time of the connection
        self._data_since = 0.0  # the loop's time of the 354 of the DATA under way
        self._stranger = False  # the DATA under way is of a sender without an account
        self._data_held = 0  # body bytes of this DATA counted in the guard's `stranger_data`
        self._command: str | None = None  # the command of _PROGRESS being run, if one is
        for name in _PROGRESS:  # aiosmtpd's command loop dispatches through this table
            method = self._smtp_methods.get(name)
            if method is not None:
                self._smtp_methods[name] = self._watched(name, method)

    def _watched(self, name: str, method: Any) -> Any:
        async def run(arg: str | None) -> None:
            # A repeated EHLO on the same channel moves nothing forward; the one after STARTTLS does.
            fresh = name not in ("EHLO", "HELO") or (self.session is not None and not self.session.host_name)
            self._command = name if fresh else None
            try:
                await method(arg)
            finally:
                self._command = None

        return sessioninit.wrapped(run, method)  # keeps aiosmtpd's syntax attributes, which HELP reads

    # ---- connections -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._since:  # not again after STARTTLS's handshake
            self._since = self._progress = asyncio.get_running_loop().time()
        else:
            self._count.restart()
        if self._original_transport is None and self._key is None and self._refusal is None:
            peer = transport.get_extra_info("peername")
            key = client_key(str(peer[0]) if isinstance(peer, tuple) and peer else None)
            self._refusal = self.guard.admit(key)
            if self._refusal is None:
                self._key = key
        self.guard.live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.guard.live.discard(self)
        if self._key is not None:
            self.guard.release(self._key)
            self._key = None
        super().connection_lost(error)
        # The session, its reader and its task hold one another: only Python's full collection,
        # rare in a long-running daemon, frees them. A body's bytes must not wait for it (waves of
        # strangers' unfinished bodies raised the daemon's memory by ~30 MiB each, for good).
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader._buffer.clear()

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            limit = "connections" if self._refusal == replies.TOO_MANY_CONNECTIONS else "per_address"
            self.guard.bite(limit, ip=self._peer_ip(), open=self.guard.open)
            await self.push(self._refusal)
            if self.transport is not None:
                self.transport.close()
            return
        try:
            await super()._handle_client()
        except asyncio.CancelledError as exc:  # the connection was lost
            # The task keeps this exception, its traceback keeps the frames, and their locals (a
            # body's pieces, its last read) keep a lost DATA's bytes until Python's full collection,
            # rare in a long-running daemon: waves of strangers' unfinished bodies raised its memory
            # by some 30 MiB each, and kept it. The frames are done; their locals go now.
            traceback.clear_frames(exc.__traceback__)
            raise

    # ---- lines and commands ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.input_ended:  # at a line over the cap: the reader reads no further (`closing`)
            return
        if self._in_data:
            self._progress = now = self.loop.time()
            if self._data_started:
                # aiosmtpd moves the idle deadline per command only, so a body still arriving was
                # cut `timeout_seconds` after DATA; each piece moves it, within the mail's bound.
                if now - self._data_since > self.guard.max_data_seconds:
                    self._close_with(replies.DATA_TOO_SLOW, "data_time")
                    return
                self._deadline = now + self._timeout_duration
                if self._stranger:
                    self._data_held += len(data)
                    self.guard.stranger_data += len(data)
                    if self.guard.stranger_data > self.guard.stranger_data_budget:
                        held = self.guard.stranger_data
                        self._release_data()  # at once: the next session's bytes see the room
                        self._close_with(replies.DATA_BUDGET, "data_budget", held=held)
                        return
                    took, guard = now - self._data_since, self.guard
                    if took > guard.stranger_rate_grace and self._data_held < guard.stranger_min_rate * took:
                        held = self._data_held
                        self._release_data()
                        self._close_with(
                            replies.DATA_TOO_SLOW_RATE, "data_rate", held=held, seconds=round(took)
                        )
                        return
        if self._in_data or self.transport is None or self.transport.is_closing():
            self._count.passed(data)
            super().data_received(data)
            return
        if data.startswith(b"\x16\x03") and self._tls_protocol is None:  # a TLS record's head
            self.wants_implicit_tls()  # (`ClosingSMTP`'s: a look here, not a method at every read)
        bodies = self._tls_handshake_okay and not (self.require_starttls and not self._tls_protocol)
        count = self._count
        if not count.feed(data, len(self._reader._buffer), bodies=bodies) and count.over_at is None:
            self._end_at_long_line(data, count.refused_at)  # (a line past the count's limit comes first)
        elif not count.past():  # (nor `overlong`: `feed` answers False for it)
            super().data_received(data)
        else:
            self._too_many_commands(data)

    def _too_many_commands(self, data: bytes = b"") -> bool:
        count = self._count
        if count.overlong:  # a refused DATA's held lines, now commands, had one over the cap
            self._end_at_long_line(b"", None)
        elif not count.past():
            return False
        elif self.end_input_past_count(data, count, replies.TOO_MANY_COMMANDS):  # answered up to there
            self.guard.bite("commands", ip=self._peer_ip(), commands=count.lines, rcpts=count.rcpts)
        return True

    @syntax("DATA")  # as aiosmtpd's: HELP lists only the commands that carry one
    async def smtp_DATA(self, arg: str) -> None:
        self._in_data, self._data_started, self._taken = True, False, False
        held = self._count.data_run(len(self._reader._buffer))  # its body, if it gets a 354
        self._set_line_limit(self._data_line_limit)
        try:
            await super().smtp_DATA(arg)
        finally:
            self._release_data()
            self._in_data = False
            self._set_line_limit(COMMAND_LINE_CAP + 2)
            if self._taken:
                # A mail went through: the session is doing real work. Not after a refused one:
                # rounds of NOOPs, 2,000 RCPTs and an empty mail made a session without end.
                self._count.taken(held)
                self._proven = True
            else:  # its lines after the DATA line, or after its ".", count on from it
                self._count.data_refused(held, read=self._data_started)
                if self.transport is not None and not self.transport.is_closing():
                    self._too_many_commands()

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """aiosmtpd's EHLO; the command line limits then follow what it advertised (`linelimits`) if it
        got its 250: a bare EHLO's `501` leaves the session's earlier EHLO (DSN and all) in force."""
        self._advertised = []
        try:
            await ehloreply.ehlo(self, hostname)  # aiosmtpd's, its lines' work done once per class
        finally:
            keywords, self._advertised = self._advertised, None
        if keywords:  # its 250 lines' keywords
            self.command_size_limits = linelimits.for_keywords(keywords)

    def _reply_text(self, status: str) -> str:
        if self._advertised is not None and status[:3] == "250":
            self._advertised.append(status[4:].split(" ", 1)[0])
        if self._command is not None and status.startswith(_PROGRESS[self._command]):
            self._progress = self.loop.time()
        if status.startswith("354"):
            self._data_started, self._data_since = True, self.loop.time()
            self._stranger = self._without_account()
        elif self._data_started and status.startswith("250"):
            self._taken = True
        return super()._reply_text(status)

    async def push(self, status: str | bytes) -> None:
        """A `421` closes the channel once written (RFC 5321 3.8, 4.2.2), whoever gave it: a handler's
        `421 4.3.2` at shutdown left the session open, and the client's next RCPT heard a permanent
        `503 need MAIL command`, DATA another. Never held for a pipelined group: the replies held
        before it go out with it, and nothing comes after it."""
        if (status[:4] if isinstance(status, bytes) else status[:4].encode("ascii", "replace")) != b"421 ":
            await super().push(status)
            return
        self._groupable = False  # set again by the next groupable command, if one ever runs
        try:
            await super().push(status)
        finally:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()
            self.drop_input()

    def _set_line_limit(self, limit: int) -> None:
        # StreamReader has no public setter; its `_limit` is what readuntil and flow control use.
        self.line_length_limit = limit
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader._limit = limit

    # ---- idle time ---------------------------------------------------------------------------

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.guard.bite("idle", ip=self._peer_ip())
            self.transport.write(self.take_held() + self.idle_reply().encode("ascii") + b"\r\n")
        super()._timeout_cb()

    # ---- helpers -----------------------------------------------------------------------------

    def unproven(self) -> bool:
        """Counted, not in DATA, and neither logged in nor had a mail taken: may give way at the cap."""
        session = self.session
        return (
            self._key is not None
            and not self._in_data
            and not self._proven
            and not (session and session.authenticated)
        )

    def _without_account(self) -> bool:
        """Neither logged in nor an ACL'd sender of an account (gate.Sender, kept on the envelope)."""
        if self.session is not None and self.session.authenticated:
            return False
        sender = getattr(self.envelope, "smsgw", None)
        return getattr(sender, "account", None) is None

    def _release_data(self) -> None:
        self.guard.stranger_data -= self._data_held
        self._data_held = 0

    def stranger_data_rate(self, after: float) -> float | None:
        """Body bytes a second since the 354 of a stranger's DATA going on for `after` seconds or
        more, or None for any other session (`eviction.who_gives_way`)."""
        if self._key is None or not (self._in_data and self._data_started and self._stranger):
            return None
        took = self.loop.time() - self._data_since
        return self._data_held / took if took >= after else None

    def stalled_for(self) -> float:
        """Seconds since the session's last step towards a mail (see `_PROGRESS`, a body's bytes)."""
        return self.loop.time() - self._progress

    def age(self) -> float:
        return self.loop.time() - self._since

    def give_way(self) -> None:
        """Close for a new connection at the cap: uncounted at once, so the new one takes its place."""
        in_data = self._in_data
        self.guard.bite(
            "slow_data_evicted" if in_data else "idle_evicted", ip=self._peer_ip(), open=self.guard.open
        )
        if self._key is not None:
            self.guard.release(self._key)
            self._key = None
        self.guard.live.discard(self)
        self.say_and_close(replies.SLOW_DATA_EVICTED if in_data else replies.IDLE_EVICTED)

    def _end_at_long_line(self, data: bytes, at: int | None) -> None:
        if not self.input_ended:  # 421 once the lines before the line are answered (`closing`)
            self.guard.bite("command_line", ip=self._peer_ip())
            self.end_input(data, at, replies.LINE_TOO_LONG)

    def _close_with(self, reply: str, limit: str, **fields: Any) -> None:
        """Answer and hang up at once, from the transport callback, without feeding the reader."""
        self.guard.bite(limit, ip=self._peer_ip(), **fields)
        self.say_and_close(reply)

    def _peer_ip(self) -> str | None:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else None
