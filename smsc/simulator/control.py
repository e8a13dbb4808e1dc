"""The simulator's control port: a JSON-lines TCP server on loopback, and its client.

One JSON object per line in, one per line out. `{"op": "mo", "source": ..., "destination": ...,
"text": ..., "protocol": null}` injects an MO (`"reply_to_last": true` instead of the two numbers
answers the last SMS the simulator accepted, from its phone to its sender; `"parts": N` cuts the
text into N segments and `"shuffle": true` sends them out of order). `{"op": "report",
"message_id": ..., "status": "delivered" | "failed" | "pending"}` injects a delivery report (`"last":
true` instead of the id: on the last SMS the simulator accepted; a status "expired", "rejected",
"undeliverable" or "deleted", and an "error" 0-999, choose the failed receipt's state and code) and
`{"op": "ping"}` answers. A restarted simulator remembers no SMS: "reply_to_last" then answers
the last one its log file holds, "last" says that none came since it started, and a report on a
message id finds its SMS in the log file (answered with `"from_log": true`). A report on an SMS
whose final report the client already took is sent, and answered with `"already": {"status": ...,
"at": ...}`: it changes nothing at the gateway. `{"op": "drop"}` ends every logged-in session at once,
as an SMSC's outage or restart would (`"system_id"` and `"protocol"` choose some), without the
protocol's goodbye; the MO parts and reports a session had not had acknowledged are held for the next
login, those the client had read but not yet answered too: they come again after it, as from a real
SMSC's outage (the gateway takes such a report a second time as a repeat). The answer counts the
sessions dropped (`"dropped": N`; 0 when none matched, which is no error: the client may be between
sessions); a key other than "op", "protocol" and "system_id" is refused, as a misspelt one would drop
every session. Errors come back
as `{"ok": false, "error": "..."}`; nothing a client sends can stop the server. `smsgw simulator
...` talks to it through `send_command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from smsc.base import ReportStatus
from smsc.encoding import EmptyText
from smsc.simulator.core import SimulatorCore
from smsc.simulator.numbers import mo_segments
from smsc.simulator.partlog import answer_numbers
from smsc.simulator.receipts import DEFAULT_ERROR, FINAL_STATES, Detail

if TYPE_CHECKING:
    from smsc.simulator.serving import SessionBase

log = structlog.get_logger(__name__)

MAX_LINE = 64 * 1024
TAIL_BYTES = 256 * 1024  # how far back from the end of its log file "--last" looks for an SMS
LOOKUP_BYTES = 32 * 1024 * 1024  # how far back a report on a message id of an earlier run looks for it
STATUSES = ("delivered", "failed", "pending", *FINAL_STATES)  # what "status" of a report may say


def _tail(path: Path, size: int) -> bytes | None:
    """The log's last `size` bytes (a busy simulator's log grows without end), None when unreadable."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, 2)
            f.seek(max(0, end - size))
            return f.read()
    except OSError:
        return None


def last_logged(path: Path, *, delivered: bool = False) -> dict[str, Any] | None:
    """The last SMS the simulator's log file holds as accepted (one of an earlier run, too), or None;
    with `delivered`, the last one its phone got (what a phone can answer)."""
    tail = _tail(path, TAIL_BYTES)
    if tail is None:
        return None
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:  # the line the tail cut, or one a killed run left torn
            continue
        fields, unread = ("message_id", "source", "destination"), ("rejected", "failed", "expired")
        if (
            isinstance(record, dict)
            and record.get("verdict") not in (unread if delivered else ("rejected",))
            and all(isinstance(record.get(k), str) and record[k] for k in fields)
        ):
            return record
    return None


async def nothing_since_start(core: SimulatorCore, what: str) -> str:
    """Why "--last" finds no SMS in this run: none yet at all, or only before the simulator started."""
    record = await asyncio.to_thread(last_logged, core.log_path)
    if record is None:
        return f"no SMS received yet: nothing to {what}"
    started = core.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"no SMS received since the simulator started at {started}: the last one in {core.log_path}"
        f" (message_id {record['message_id']}, {record.get('ts', 'time unknown')}) came before, and this run"
        f" keeps nothing of it to {what}"
    )


async def execute(core: SimulatorCore, command: object) -> dict[str, Any]:
    """Run one command against the core; the answer always has "ok"."""
    if not isinstance(command, dict):
        return {"ok": False, "error": "a command is a JSON object"}
    op = command.get("op")
    if op == "ping":
        return {"ok": True}
    if op == "mo":
        return await _mo(core, command)
    if op == "report":
        message_id, status = command.get("message_id"), command.get("status")
        if command.get("last"):
            message_id = core.last_message_id()
            if message_id is None:
                return {"ok": False, "error": await nothing_since_start(core, "report on")}
        chosen = _chosen_state(status, command.get("error"))
        if isinstance(chosen, str):
            return {"ok": False, "error": chosen}
        if not isinstance(message_id, str) or not message_id:
            return {"ok": False, "error": "report needs a string message_id"}
        return await _report(core, message_id, *chosen)
    if op == "drop":
        return await _drop(core, command)
    return {"ok": False, "error": f"unknown op {op!r}"}


_DROP_KEYS = frozenset(("op", "protocol", "system_id"))


async def _drop(core: SimulatorCore, command: dict[str, Any]) -> dict[str, Any]:
    """End the sessions logged in that the command names: how a test or an admin stages an outage
    on the wire while the simulator goes on (killing it lost what it held, and its ports)."""
    if unknown := sorted(set(command) - _DROP_KEYS):
        # A misspelt key ("sytem_id") chose nothing, and every session was dropped.
        return {"ok": False, "error": f"drop takes op, protocol and system_id, not {', '.join(unknown)}"}
    protocol, system_id = command.get("protocol"), command.get("system_id")
    if protocol not in (None, "smpp", "cimd2"):
        return {"ok": False, "error": 'protocol must be null, "smpp" or "cimd2"'}
    if system_id is not None and not isinstance(system_id, str):
        return {"ok": False, "error": "system_id must be a string"}
    sessions = core.logged_in(protocol, system_id)
    for session in sessions:
        await cast("SessionBase", session).close()  # the servers' sessions; held deliveries go back
    log.info("sim.control.dropped", sessions=len(sessions), protocol=protocol, system_id=system_id)
    return {"ok": True, "dropped": len(sessions)}


def _chosen_state(status: object, error: object) -> tuple[ReportStatus, Detail | None] | str:
    """The report a command asks for: a status, or a final state of `receipts` (a failed report
    saying EXPIRED, REJECTD ...) with its error code; a string saying what is wrong otherwise."""
    if error is not None and (not isinstance(error, int) or isinstance(error, bool) or not 0 <= error <= 999):
        return "error must be a whole number 0 to 999"
    if status in FINAL_STATES:
        return ReportStatus.FAILED, (str(status), DEFAULT_ERROR if error is None else error)
    try:
        report = ReportStatus(status)
    except ValueError:
        return f"status must be one of {', '.join(STATUSES)}"
    if error is None:
        return report, None
    if report is not ReportStatus.FAILED:
        return "an error code goes with a failed report (failed, expired, rejected, undeliverable, deleted)"
    return report, ("undeliverable", error)


async def _report(
    core: SimulatorCore, message_id: str, report: ReportStatus, detail: Detail | None = None
) -> dict[str, Any]:
    """Inject a report on `message_id`. An SMS an earlier run took is found in the log (the report a
    kill -9 cut off is then still sent by hand: "from_log"); "already" names the final report the
    client took for it in this run, after which the gateway holds the SMS final and this one changes
    nothing there, what the command must say rather than "sent" alone."""
    from_log = False
    if not core.knows(message_id):
        record = await asyncio.to_thread(logged_part, core.log_path, message_id)
        if record is None or not core.recall(record):
            return {
                "ok": False,
                "error": f"unknown message_id {message_id!r}: no SMS this simulator took has it, nor"
                f" one in the last {LOOKUP_BYTES // 2**20} MiB of its log {core.log_path}",
            }
        from_log = True
    already = core.reported(message_id)
    if not await core.inject_report(message_id, report, detail):
        return {"ok": False, "error": f"unknown message_id {message_id!r}"}
    answer: dict[str, Any] = {"ok": True, "message_id": message_id}
    if already is not None:
        answer["already"] = {"status": already[0].value, "at": already[1].astimezone(UTC).isoformat()}
    if from_log:
        answer["from_log"] = True
    return answer


def logged_part(path: Path, message_id: str) -> dict[str, Any] | None:
    """The log record of the accepted part with this message id (the newest, within the log's last
    `LOOKUP_BYTES`), or None. Only lines holding the id as `part_record` writes it are parsed."""
    needle = json.dumps({"message_id": message_id})[1:-1].encode()
    tail = _tail(path, LOOKUP_BYTES)
    if tail is None:
        return None
    for line in reversed(tail.splitlines()):
        if needle not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message_id") == message_id:
            return record if record.get("verdict") != "rejected" else None
    return None


async def _mo(core: SimulatorCore, command: dict[str, Any]) -> dict[str, Any]:
    fields = {k: command.get(k) for k in ("source", "destination", "text")}
    if command.get("reply_to_last"):
        last = core.last_sms()
        if last is None:  # the simulator was restarted since: its log still has the SMS
            logged = await asyncio.to_thread(last_logged, core.log_path, delivered=True)
            last = answer_numbers(logged) if logged is not None else None
        if last is None:
            return {"ok": False, "error": "no SMS received yet: nothing to reply to"}
        fields["source"], fields["destination"] = last
    bad = [k for k, v in fields.items() if not isinstance(v, str) or (k != "text" and not v)]
    if bad:
        return {"ok": False, "error": f"mo needs string {', '.join(bad)}"}
    for k in ("source", "destination"):  # not encodable, it failed the session's task past the answer
        if not (str(fields[k]).isascii() and str(fields[k]).isprintable()):
            return {
                "ok": False,
                "error": f"mo {k} must be printable ASCII (SMPP and CIMD2 carry addresses so): {fields[k]!a}",
            }
    protocol = command.get("protocol")
    if protocol not in (None, "smpp", "cimd2"):
        return {"ok": False, "error": 'protocol must be null, "smpp" or "cimd2"'}
    parts, shuffle = command.get("parts"), command.get("shuffle", False)
    if parts is not None and (not isinstance(parts, int) or isinstance(parts, bool)):
        return {"ok": False, "error": "parts must be a whole number"}
    if not isinstance(shuffle, bool):
        return {"ok": False, "error": "shuffle must be true or false"}
    try:
        mo_segments(str(fields["text"]), parts)
    except EmptyText:
        pass
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    reached = await core.inject_mo(
        str(fields["source"]),
        str(fields["destination"]),
        str(fields["text"]),
        protocol=protocol,
        parts=parts,
        shuffle=shuffle,
    )
    answer: dict[str, Any] = {"ok": True, "sessions": reached}
    if command.get("reply_to_last"):
        answer.update(source=fields["source"], destination=fields["destination"])
    return answer


class ControlServer:
    def __init__(self, core: SimulatorCore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core = core
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sim.control.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    writer.write(_line({"ok": False, "error": "line too long"}))
                    break
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial.strip():
                        break
                    line = exc.partial
                answer = await self._answer(line)
                writer.write(_line(answer))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            command = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not JSON"}
        try:
            return await execute(self.core, command)
        except Exception as exc:
            log.exception("sim.control.failed")
            return {"ok": False, "error": f"internal error: {exc.__class__.__name__}"}


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def send_command(host: str, port: int, command: dict[str, Any]) -> dict[str, Any]:
    """Send one command to a running simulator and return its answer (OSError if unreachable)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_line(command))
        await writer.drain()
        answer = json.loads(await reader.readline() or b"null")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if not isinstance(answer, dict):
        return {"ok": False, "error": "no answer from the simulator"}
    return answer
