"""The protocol-neutral heart of the built-in SMSC simulator.

The SMPP and CIMD2 servers parse their wire format and hand each received part to `SimulatorCore`,
which owns everything the protocols share: login check, the verdict rules (reject / fail by number
suffix), message ids, the JSON-lines log of every part, the registry of logged-in sessions, and the
routing of injected MOs and delivery reports to a session able to carry them, held until one logs in
when none is. A report or MO part a session could not hand over is held the same way, as an SMSC would.
Once `resume`d (by `Simulator.start`), the reports it owes are also kept on disk (`owed.py`), so that
the next run sends those a stop cut off.
"""

from __future__ import annotations

import asyncio
import hmac
import weakref
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from smsc.base import ReportStatus
from smsc.simulator import heldmo
from smsc.simulator.bounds import MAX_RECORDS, MAX_RETRY_DELAY, keep_recent, retry_pause
from smsc.simulator.held import Held
from smsc.simulator.limits import SubmitLimits
from smsc.simulator.owed import Owed, OwedReports, owed_path
from smsc.simulator.partlog import PartLog, answer_numbers, highest_id, part_record
from smsc.simulator.receipts import Detail
from smsc.simulator.submitted import SimSession, SubmittedSms, SubmitVerdict

if TYPE_CHECKING:
    from smsc.settings import SimulatorSettings

__all__ = ["MAX_RECORDS", "MAX_RETRY_DELAY", "SimSession", "SimulatorCore", "SubmitVerdict", "SubmittedSms",
           "keep_recent", "retry_pause"]  # fmt: skip  # what the servers and tests import from here

log = structlog.get_logger(__name__)

# Message id → addresses, for reports injected later, and the final reports taken: some 500 bytes an SMS,
# so 100,000 of each held 75 MB of the daemon that runs the simulator. 20 s of SMS at 1,000/s; an older
# one is found in the simulator's log (`control`).
MAX_MESSAGES = 20_000

# Why a part is refused, per protocol. SMPP: ESME_RINVDSTADR; CIMD2: 300 incorrect destination address.
INVALID_DESTINATION = "invalid_destination"
SMPP_STATUS = {INVALID_DESTINATION: 0x0B}
CIMD2_ERROR = {INVALID_DESTINATION: 300}


@dataclass(frozen=True, slots=True)
class _Sent:
    protocol: str
    system_id: str
    source: str
    destination: str
    submitted_at: datetime
    # The session that submitted it, while it lives: its receipt goes there (`_route`).
    origin: weakref.ref[SimSession] | None = field(default=None, compare=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SimulatorCore:
    def __init__(
        self,
        cfg: SimulatorSettings,
        log_path: Path,
        *,
        now: Callable[[], datetime] = utcnow,
        first_id: int | None = None,
        region: str = "PL",
    ) -> None:
        self.cfg = cfg
        self.log_path = log_path
        self.region = region  # how national numbers are read; the gateway's `default_region`
        self._now = now
        # Ids continue from the clock, and `resume` moves them past the highest one its log holds, so
        # that a restarted simulator never reuses one the gateway may still be waiting on a report for.
        self._next_id = first_id if first_id is not None else int(now().timestamp() * 1000)
        self.started_at = now()  # what "--last" may refer to: the SMS of this run (control.py)
        self.records: list[dict[str, object]] = []
        self._sessions: list[SimSession] = []
        self._messages: OrderedDict[str, _Sent] = OrderedDict()
        # message id → the final report its client took and when: a later one changes nothing there
        self._reported: OrderedDict[str, tuple[ReportStatus, datetime]] = OrderedDict()
        self._held = Held()
        self._tasks: set[asyncio.Task[None]] = set()
        self._part_log = PartLog(log_path)
        self.owed: OwedReports | None = None  # the reports owed, on disk once `resume` ran
        self.limits = SubmitLimits(cfg, lambda: self._now().timestamp())  # off unless configured
        log_path.parent.mkdir(parents=True, exist_ok=True)

    # --- logins and sessions ------------------------------------------------------------------

    def check_login(self, system_id: str, password: str) -> bool:
        ok_id = hmac.compare_digest(system_id.encode(), self.cfg.system_id.encode())
        ok_pw = hmac.compare_digest(password.encode(), self.cfg.password.encode())
        return ok_id and ok_pw

    def register(self, s: SimSession) -> None:
        if s not in self._sessions:
            self._sessions.append(s)
        log.info("sim.session_up", protocol=s.protocol, system_id=s.system_id)
        held = self._held.take(lambda h: self._fits(s, h[0], h[1]))
        for item in held:
            self._spawn(self._deliver_held(s, item[2]))
        if any(item[2][0] in ("mo", "part") for item in held):
            self._keep_held_mos()

    def _keep_held_mos(self) -> None:
        """The held MOs on disk (`heldmo`), once `resume` made this run the one keeping files."""
        if self.owed is not None:
            heldmo.save(heldmo.held_path(self.log_path), self._held.held_mos())

    def unregister(self, s: SimSession) -> None:
        if s in self._sessions:
            self._sessions.remove(s)
            log.info("sim.session_down", protocol=s.protocol, system_id=s.system_id)

    @staticmethod
    def _fits(s: SimSession, protocol: str | None, system_id: str | None) -> bool:
        return (protocol is None or s.protocol == protocol) and (
            system_id is None or s.system_id == system_id
        )

    def _pick(self, protocol: str | None, system_id: str | None = None) -> SimSession | None:
        # The newest login: after a reconnect an old, half-dead session may not have noticed yet.
        for s in reversed(self._sessions):
            if self._fits(s, protocol, system_id):
                return s
        return None

    def logged_in(self, protocol: str | None, system_id: str | None) -> list[SimSession]:
        """The sessions logged in (of that protocol, with that system_id): the control port's "drop"."""
        return [s for s in self._sessions if self._fits(s, protocol, system_id)]

    def _route(self, sent: _Sent) -> SimSession | None:
        """A receipt's session: its SMS's, while bound to receive, else the newest of its login (a
        transmitter's receipts go to a receiver, as an SMSC's do). The newest alone gave smsgw's
        receipts to a Kannel bound later with the same login: the gateway never settled its SMS."""
        origin = sent.origin() if sent.origin is not None else None
        if origin is not None and origin in self._sessions:
            return origin
        return self._pick(sent.protocol, sent.system_id)

    # --- submits ------------------------------------------------------------------------------

    def on_submit(self, sms: SubmittedSms, session: SimSession | None = None) -> SubmitVerdict:
        """Apply the suffix rules to one received part and log it; `session` (the one it came by)
        gets its receipt while it is bound."""
        digits = sms.destination.lstrip("+")
        if any(digits.endswith(s) for s in self.cfg.reject_suffixes if s):
            verdict = SubmitVerdict(
                accepted=False,
                message_id="",
                error=INVALID_DESTINATION,
                smpp_status=SMPP_STATUS[INVALID_DESTINATION],
                cimd2_error=CIMD2_ERROR[INVALID_DESTINATION],
            )
            outcome = "rejected"
        else:
            self._next_id += 1
            message_id = str(self._next_id)
            failed = any(digits.endswith(s) for s in self.cfg.fail_suffixes if s)
            # Its validity, on this SMSC's clock, ends before the report's time: expired, as a real SMSC's.
            expired = not failed and sms.expires_within(self._now(), self.cfg.dlr_delay_seconds)
            status = ReportStatus.FAILED if failed or expired else ReportStatus.DELIVERED
            wanted = sms.want_report and not (
                sms.failure_report_only if status is ReportStatus.DELIVERED else sms.success_report_only
            )
            verdict = SubmitVerdict(
                accepted=True, message_id=message_id, report=status if wanted else None,
                report_delay=self.cfg.dlr_delay_seconds, intermediate=sms.intermediate_report,
                detail=("expired", 0) if expired else None,
            )  # fmt: skip
            outcome = "failed" if failed else "expired" if expired else "delivered"
            origin = weakref.ref(session) if session is not None else None
            self._messages[message_id] = _Sent(
                sms.protocol, sms.system_id, sms.source, sms.destination, self._now(), origin
            )
            while len(self._messages) > MAX_MESSAGES:
                self._messages.popitem(last=False)
        self._log(sms, verdict.message_id, outcome)
        return verdict

    def _log(self, sms: SubmittedSms, message_id: str, verdict: str) -> None:
        record = part_record(sms, message_id, verdict, self._now())
        keep_recent(self.records, record)
        self._part_log.append(record)
        # DEBUG: the daemon's INFO log holds no phone number and two lines a mail; the part log keeps these.
        log.debug("sim.received", **{k: v for k, v in record.items() if k not in ("text", "ts")})

    # --- MOs and reports ----------------------------------------------------------------------

    async def inject_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        protocol: str | None = None,
        parts: int | None = None,
        shuffle: bool = False,
    ) -> int:
        """Send an MO to one logged-in session (the newest, of `protocol` if given); the number of
        sessions reached, 0 when none is logged in (the MO is then held for the next login).
        `parts` cuts the text into that many segments, `shuffle` sends them out of order."""
        s = self._pick(protocol)
        if s is None:
            # With its segments as asked: a held 2-part MO came as 3 (the default cut) after the login.
            self._held.add((protocol, None, ("mo", source, destination, text, parts, shuffle)))
            self._keep_held_mos()
            log.debug("sim.mo_held", source=source, destination=destination)
            return 0
        if parts is None and not shuffle:
            await s.send_mo(source, destination, text)
        else:
            await s.send_mo(source, destination, text, parts=parts, shuffle=shuffle)
        log.debug("sim.mo_sent", protocol=s.protocol, source=source, destination=destination)
        return 1

    def last_sms(self) -> tuple[str, str] | None:
        """(phone, our number) of the last SMS delivered: where `send-mo --reply-to-last` answers from.
        A phone whose SMS failed (a number ending in a fail suffix) never read it: answering that one
        mailed the sender an answer to an SMS the gateway had just bounced."""
        for record in reversed(self.records):
            if record.get("verdict") == "delivered":
                return answer_numbers(record)
        return None

    def last_message_id(self) -> str | None:
        """The id of the last SMS accepted: what `send-report --last` reports on."""
        for record in reversed(self.records):
            if record.get("verdict") != "rejected":
                return str(record["message_id"])
        return None

    def knows(self, message_id: str) -> bool:
        """Whether this run can report on `message_id` (it took the SMS, or `recall`ed it)."""
        return message_id in self._messages

    def recall(self, record: dict[str, Any]) -> bool:
        """Take an accepted SMS of an earlier run back from its log record (`partlog.part_record`), so
        that `send-report` can still report on it: a kill -9 loses the reports due in its last moment
        (`owed.HOLD_SECONDS`), and their SMS stayed `submitted` with no way to settle them. False for a
        record that names no accepted SMS. Its submit time is the logged one, which CIMD2's 060 (the
        time the answer went) matches to the second but for a submit answered across a second's end."""
        fields = ("message_id", "protocol", "system_id", "source", "destination", "ts")
        if record.get("verdict") == "rejected" or not all(isinstance(record.get(k), str) for k in fields):
            return False
        try:
            at = datetime.fromisoformat(record["ts"])
        except ValueError:
            return False
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        sent = _Sent(record["protocol"], record["system_id"], record["source"], record["destination"], at)
        self._messages[record["message_id"]] = sent
        while len(self._messages) > MAX_MESSAGES:
            self._messages.popitem(last=False)
        return True

    def reported(self, message_id: str) -> tuple[ReportStatus, datetime] | None:
        """The final report this run's client took for `message_id` and when, if one was: the gateway
        then holds the SMS final, and a report injected later changes nothing."""
        return self._reported.get(message_id)

    async def inject_report(
        self, message_id: str, status: ReportStatus, detail: Detail | None = None
    ) -> bool:
        """Send a report for a message this simulator accepted (`detail`: a chosen final state and
        error, `receipts`); False if the id is unknown. With no session of that client logged in,
        the report is held for its next login."""
        sent = self._messages.get(message_id)
        if sent is None:
            return False
        s = self._route(sent)
        if s is None:
            self._held.add((sent.protocol, sent.system_id, ("report", message_id, status, detail)))
            log.debug("sim.report_held", message_id=message_id)
            return True
        await s.send_report(
            message_id, sent.source, sent.destination, status, sent.submitted_at, detail=detail
        )
        log.debug("sim.report_sent", message_id=message_id, status=status.value)
        return True

    def hold_part(self, protocol: str, part: object) -> None:
        """A session went away before the client acknowledged this MO part: the next login of the same
        protocol gets that very part again, also after a restart (`heldmo`). Not the whole text anew:
        the client may hold the other parts, which a fresh concatenation reference would leave alone."""
        self._held.add((protocol, None, ("part", part)))
        self._keep_held_mos()

    def hold_report(self, message_id: str, status: ReportStatus, detail: Detail | None = None) -> None:
        sent = self._messages.get(message_id)
        if sent is not None:
            self._held.add((sent.protocol, sent.system_id, ("report", message_id, status, detail)))

    def report_later(self, verdict: SubmitVerdict, *, submitted_at: datetime | None = None) -> None:
        """Schedule the verdict's report after its delay (what a server does after answering), and
        note it as owed until the client takes it. `submitted_at` is the submit time the server
        answered with, when its protocol names the SMS by it (CIMD2's 060)."""
        if not verdict.accepted:
            return
        sent = self._messages.get(verdict.message_id)
        if verdict.report is not None and self.owed is not None and sent is not None:
            when = submitted_at or sent.submitted_at
            due = self._now() + timedelta(seconds=verdict.report_delay)
            self.owed.owe(Owed(verdict.message_id, sent.protocol, sent.system_id, sent.source,
                               sent.destination, when, verdict.report, due))  # fmt: skip
        if verdict.report is not None or verdict.intermediate:
            self._spawn(self._report_after(verdict))

    def report_taken(self, message_id: str, status: ReportStatus) -> None:
        """A session's client acknowledged a report (or the session gave up on it after its
        attempts, as the live run does): a final one is no longer owed."""
        if status is not ReportStatus.PENDING:
            self._reported[message_id] = (status, self._now())
            self._reported.move_to_end(message_id)
            while len(self._reported) > MAX_MESSAGES:
                self._reported.popitem(last=False)
        if self.owed is not None and status is not ReportStatus.PENDING:
            self.owed.settle(message_id)

    async def resume(self) -> None:
        """Keep the reports owed on disk from now on, and send those an earlier run left owed: each
        after what is left of its delay, held (as any report) until its client binds. A log that is
        not a regular file (log = "/dev/null") keeps none."""
        if self.owed is not None or (self.log_path.exists() and not self.log_path.is_file()):
            return
        # Ids beyond the clock: a run of more than 1,000 submits a second handed them out ahead of it.
        self._next_id = max(self._next_id, await asyncio.to_thread(highest_id, self.log_path))
        kept = OwedReports(owed_path(self.log_path), lock=self.log_path)
        earlier = await asyncio.to_thread(kept.load)
        if earlier is None:
            return
        self.owed, now = kept, self._now()
        for protocol, what in heldmo.load(heldmo.held_path(self.log_path)):
            self._held.add((protocol, None, what))  # a whole MO, or a part a session left unacknowledged
        for owed in earlier:
            mid = owed.message_id
            self._messages[mid] = _Sent(owed.protocol, owed.system_id, owed.source, owed.destination,
                                        owed.submitted_at)  # fmt: skip
            if mid.isdigit():  # never hand out an id the gateway still waits on a report for
                self._next_id = max(self._next_id, int(mid))
            delay = max(0.0, (owed.due - now).total_seconds())
            self._spawn(self._report_after(SubmitVerdict(True, mid, report=owed.status, report_delay=delay)))
        if earlier:
            log.info("sim.reports_resumed", count=len(earlier), path=str(kept.path))

    async def _report_after(self, verdict: SubmitVerdict) -> None:
        if verdict.intermediate:  # at once: the part is in the SMSC, not yet on the phone
            await self.inject_report(verdict.message_id, ReportStatus.PENDING)
        await asyncio.sleep(verdict.report_delay)
        if verdict.report is not None:
            await self.inject_report(verdict.message_id, verdict.report, verdict.detail)

    async def _deliver_held(self, s: SimSession, item: tuple[object, ...]) -> None:
        if item[0] == "mo":
            _, source, destination, text, parts, shuffle = item
            if parts is None and not shuffle:
                await s.send_mo(str(source), str(destination), str(text))
            else:
                cut = parts if isinstance(parts, int) else None
                await s.send_mo(str(source), str(destination), str(text), parts=cut, shuffle=bool(shuffle))
        elif item[0] == "part":
            await s.send_part(item[1])
        else:
            _, message_id, status, *detail = item
            sent = self._messages.get(str(message_id))
            if sent is not None and isinstance(status, ReportStatus):
                at, chosen = sent.submitted_at, detail[0] if detail else None
                await s.send_report(str(message_id), sent.source, sent.destination, status, at, detail=chosen)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sim.task_failed", error=repr(task.exception()))

    async def close(self) -> None:
        """Cancel scheduled reports and held deliveries (on simulator stop): those owed are sent by
        the next start."""
        tasks, self._tasks = set(self._tasks), set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.owed is not None:  # what is still owed stays in its file for the next start
            self.owed.close()
