"""Fake SMPP SMSCs named by behaviour, for link tests and end-to-end tests of the whole daemon.

Each is a real TCP server on 127.0.0.1 (port 0 unless given) built on the simulator's SMPP server,
used as an async context manager: `async with HappySMSC() as smsc: ... smsc.port ... await
smsc.wait_for(1) ... smsc.received[0].text`. Login is system_id "smsgw" / password "secret" unless
given. Unlike the shipped simulator, no number fails or is refused unless `fail_suffixes` /
`reject_suffixes` say so, and reports go out at once (`dlr_delay_seconds=0`).
`EventRecorder` (from `tests.fakes.events`) is a `LinkEvents` that keeps what a link hands up.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gateway.config import SimulatorSection
from smsc.base import ReportStatus
from smsc.pacing import TokenBucket
from smsc.simulator.core import SimulatorCore, SubmittedSms, SubmitVerdict
from smsc.simulator.smpp_server import ServerStats, SmppServer, SmppSession
from tests.fakes.events import EventRecorder as EventRecorder  # re-exported: link tests import it here

ESME_RTHROTTLED = 0x58
BIND_TRANSCEIVER = 0x00000009


class _FakeSession(SmppSession):
    _cork: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._cork is not None:
            self._cork.append(data)
        else:
            super().write(data)

    async def dispatch(self, raw: bytes) -> None:
        (command_id,) = struct.unpack_from(">I", raw, 4)
        fake = self.server.fake  # type: ignore[attr-defined]
        if command_id in fake.ignored_commands:
            self.server.stats.commands["ignored"] += 1
            self.server.changed()
            return
        if command_id != BIND_TRANSCEIVER or fake.mo_with_bind is None:
            await super().dispatch(raw)
            return
        # Everything the bind produces (its response and the MO) goes out in one write.
        self._cork = []
        try:
            await super().dispatch(raw)
            if self.mode is not None:
                await self.send_mo(*fake.mo_with_bind)
        finally:
            data, self._cork = b"".join(self._cork), None
            self.write(data)

    async def on_submit_sm(self, seq: int, sms: SubmittedSms) -> None:
        await self.server.fake.on_submit(self, seq, sms)  # type: ignore[attr-defined]


class FakeSMSC:
    """Accepts every submit and reports it delivered (or as `fail_suffixes` / `reject_suffixes` say)."""

    ignored_commands: frozenset[int] = frozenset()  # command ids the fake reads and never answers
    mo_with_bind: tuple[str, str, str] | None = None  # (source, destination, text) sent with bind_resp

    def __init__(
        self,
        *,
        port: int = 0,
        system_id: str = "smsgw",
        password: str = "secret",
        fail_suffixes: Sequence[str] = (),
        reject_suffixes: Sequence[str] = (),
        dlr_delay_seconds: float = 0.0,
        response_delay: float = 0.0,
        resend_timeout: float = 2.0,
        retry_delay: float = 0.05,
        max_attempts: int = 5,
        message_id_format: Callable[[str], str] = str,
        receipt_id_format: Callable[[str], str] = str,
        log_path: Path | None = None,
        first_id: int = 0,
    ) -> None:
        cfg = SimulatorSection(
            system_id=system_id,
            password=password,
            fail_suffixes=list(fail_suffixes),
            reject_suffixes=list(reject_suffixes),
            dlr_delay_seconds=dlr_delay_seconds,
        )
        self.core = SimulatorCore(cfg, log_path or Path(os.devnull), first_id=first_id)
        self.server = SmppServer(
            self.core,
            "127.0.0.1",
            port,
            response_delay=response_delay,
            resend_timeout=resend_timeout,
            retry_delay=retry_delay,
            max_attempts=max_attempts,
            message_id_format=message_id_format,
            receipt_id_format=receipt_id_format,
        )
        self.server.session_class = _FakeSession
        self.server.fake = self  # type: ignore[attr-defined]
        self.port = port

    async def __aenter__(self) -> Self:
        await self.server.start()
        self.port = self.server.port
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.server.stop()
        await self.core.close()

    # --- behaviour hook -----------------------------------------------------------------------

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        await SmppSession.on_submit_sm(session, seq, sms)

    # --- what tests look at -------------------------------------------------------------------

    @property
    def stats(self) -> ServerStats:
        return self.server.stats

    @property
    def received(self) -> list[SubmittedSms]:
        """Every submit_sm this SMSC took (and, for SilentSMSC, every one it swallowed)."""
        return self.server.stats.received

    @property
    def sessions(self) -> list[SmppSession]:
        return [s for s in self.server.sessions if s.mode is not None and not s.closed.is_set()]

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[SubmittedSms]:
        """Wait until `n` parts were received; `timeout` is only a hang guard."""
        return await self.server.wait_for(n, timeout)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        await self.server.wait_until(predicate, timeout)

    async def inject_mo(self, source: str, destination: str, text: str) -> int:
        return await self.core.inject_mo(source, destination, text, protocol="smpp")

    async def inject_report(self, message_id: str, status: ReportStatus) -> bool:
        return await self.core.inject_report(message_id, status)

    async def unbind_all(self) -> None:
        """SMSC-initiated unbind on every bound session."""
        for s in self.sessions:
            await s.unbind()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every bound session (garbage, hand-made PDUs)."""
        for s in self.sessions:
            s.write(data)

    def drop_all(self) -> None:
        """Cut every connection without a word, as a crashed SMSC or a broken network would."""
        for s in list(self.server.sessions):
            s.writer.transport.abort()


class HappySMSC(FakeSMSC):
    """Accepts everything; reports DELIVRD at once (unless told otherwise by suffixes)."""


class ThrottlingSMSC(FakeSMSC):
    """Answers ESME_RTHROTTLED (0x58) to submits above `accept_per_second`."""

    def __init__(self, accept_per_second: float = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket = TokenBucket(accept_per_second, burst=max(1, int(accept_per_second)))
        self.throttled = 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.bucket.try_acquire():
            await super().on_submit(session, seq, sms)
        else:
            self.throttled += 1
            session.answer_submit(seq, None, status=ESME_RTHROTTLED)


class EagerMoSMSC(FakeSMSC):
    """Writes the bind_transceiver_resp and a waiting MO's deliver_sm in one send, as an SMSC with
    queued traffic does the moment a client binds."""

    def __init__(self, source: str, destination: str, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mo_with_bind = (source, destination, text)


class SilentSMSC(FakeSMSC):
    """Binds and answers enquire_link, but never answers a submit_sm (a black hole)."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)


class DisconnectingSMSC(FakeSMSC):
    """Answers `after` submits, then drops the connection on the next one without answering it
    (`times` times in all); reconnects are accepted and served normally."""

    def __init__(self, after: int = 1, times: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.after, self.times = after, times
        self.submits = 0
        self.drops = 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.submits += 1
        if self.submits > self.after and self.drops < self.times:
            self.drops += 1
            self.submits = 0
            session.writer.transport.abort()
            return
        await super().on_submit(session, seq, sms)


class DeafSMSC(FakeSMSC):
    """Serves submits but never answers enquire_link: a peer whose session is half dead."""

    ignored_commands = frozenset({0x00000015})


class DlrFirstSMSC(FakeSMSC):
    """Sends the delivery receipt before the submit_sm_resp that carries the same message id."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        verdict = self.core.on_submit(sms)
        self.server.record(sms)
        if verdict.accepted and verdict.report is not None:
            await self.core.inject_report(verdict.message_id, verdict.report)
        session.answer_submit(seq, verdict, report=False)


class LateAnswerSMSC(FakeSMSC):
    """Answers every submit_sm only `answer_after` seconds later (past a client's response timeout),
    then reports it delivered as usual: an SMSC slowed down by load whose answers still come."""

    def __init__(self, answer_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(response_delay=answer_after, **kwargs)


class HeldSMSC(FakeSMSC):
    """Takes every submit_sm and answers only when told (`answer`), oldest first, without receipts:
    a test decides when each window place frees."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.held: list[tuple[SmppSession, int, SubmitVerdict]] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        verdict = self.core.on_submit(sms)
        self.held.append((session, seq, verdict))
        self.server.record(sms)

    def answer(self, n: int = 1) -> None:
        for session, seq, verdict in self.held[:n]:
            session.answer_submit(seq, verdict, report=False)
        del self.held[:n]


class NoMessageIdSMSC(FakeSMSC):
    """Accepts every submit_sm with status 0 and an empty message_id; its receipts carry the id it
    kept to itself, so that none of them can be matched."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(message_id_format=lambda _id: "", **kwargs)
