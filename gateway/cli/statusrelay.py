"""`smsgw status`'s words on the outbox and the relay (`gateway.store.outboxhealth`): mail waiting,
sends the relay has not answered, its last answer by kind, and mail given up on; and the relay login
as the running daemon's status file tells it (`gateway.relayloginstatus`): a refusal held, or the
relay's authentication failing for now. Apart from `gateway.cli.status`, which prints them among the
rest."""

from __future__ import annotations

import math
from typing import Any

from gateway.adminrules import age
from gateway.cli.statusdaemon import when
from gateway.cli.terminal import one_line
from gateway.relayfaultkinds import FAULT_TYPES, NULL_SENDER_REFUSED
from gateway.relayloginbudget import FINDTIME, MOST_FAILED
from gateway.relayloginstatus import FAILING, NO_COMMON, REFUSED, WAITING
from gateway.relayprobepace import LOGIN_FAILING, PROBE_EVERY, PROBE_EVERY_MAX, REFUSED_SETUP
from gateway.store.outbox import relay_reply
from gateway.store.outboxhealth import SILENT_SECONDS, STUCK_SECONDS, OutboxHealth

# The kinds a probe of the relay (connect, EHLO, STARTTLS, AUTH, QUIT) sees gone
# (`relayfaults.PROBE_LIKES`).
PROBE_SEES = frozenset(FAULT_TYPES.values()) | {"closing"}
STATES = (REFUSED, FAILING, NO_COMMON, WAITING)  # the relay login's states status has words for
YEARS_100 = 100 * 365 * 86400.0  # seconds: a field beyond it is no age a status file can hold


def outbox_trouble(mail: OutboxHealth, now: float) -> bool:
    """Whether the outbox is trouble for status's exit code: mail stuck, a send unanswered, or bounces
    lost to a relay that refuses their null sender (every bounce fails so until its config changes)."""
    return mail.stuck_for(now) is not None or mail.null_refused > 0


def outbox_json(mail: OutboxHealth, now: float) -> dict[str, Any]:
    return {
        "waiting": mail.waiting,
        "oldest_age_seconds": round(waited, 1) if (waited := mail.waited(now)) is not None else None,
        "stuck": mail.stuck_for(now) is not None,
        "last_error": mail.last_error,
        "relay_said": mail.said,
        "relay_fault": mail.fault_kind,
        "sends_unanswered": mail.silent,
        "failed_last_day": mail.failed_day,
        "last_failed": mail.last_failed,
        "null_sender_refused": mail.null_refused,
    }


def outbox_lines(mail: OutboxHealth, now: float) -> list[str]:
    """The outbox's lines before the mail relay's own (`mail relay ...`)."""
    lines: list[str] = []
    waited = mail.waited(now)  # a step forward of the clock since it was queued is no time waited
    if mail.waiting and waited is not None:
        lines.append(
            f"outbox    {mail.waiting} mail(s) waiting, oldest {age(waited)} old (see `smsgw outbox list`)"
        )
    said = f"; the relay's last answer: {one_line(mail.said)}" if mail.said else ""
    if mail.silent:
        lines.append(
            f"{'':9} trouble: {mail.silent} send(s) waiting over {age(SILENT_SECONDS)} for the relay's"
            " answer to the end of the mail (other mail goes on the other send slots)"
        )
    elif mail.stuck_for(now) is not None:
        lines.append(f"{'':9} trouble: mail has waited over {age(STUCK_SECONDS)} for the relay{said}")
    elif waited is not None and waited > STUCK_SECONDS:
        # The relay takes other mail, or defers these recipients only: theirs to sort out, no trouble.
        # "Unreachable" only of a relay that was: one that answered 452 or 535 was reached.
        kind = mail.fault_kind
        if kind == "unreachable":
            lines.append(f"{'':9} the relay was unreachable for some mail, {_goes(kind)}{said}")
        elif kind is not None:
            lines.append(f"{'':9} the relay failed some mail ({kind}), {_goes(kind)}{said}")
        else:
            lines.append(f"{'':9} the relay defers some recipients{said}")
    return lines


def _goes(kind: str) -> str:
    """When mail deferred for the relay's fault of this kind goes (`gateway.relayprobe`): status said
    it "waits for its next try", up to an hour away, while a probe sends it once the relay answers.
    The probes' pace is the daemon's, not in the database status reads: 30 s apart, but twice as far
    after each mail a probe woke in vain, up to an hour, so "within 30 s" would not hold."""
    if kind == LOGIN_FAILING:
        return (
            "which goes once the relay's authentication works again and a login gets through (its own"
            " trouble, not our password; the logins go twice as far apart after each, up to"
            f" {age(PROBE_EVERY_MAX)})"
        )
    if kind in REFUSED_SETUP:
        return (
            "which goes once a probe of the relay gets through (after each refusal the probes go twice"
            f" as far apart, up to {age(PROBE_EVERY_MAX)}; a restart probes at once)"
        )
    if kind in PROBE_SEES:
        every = age(PROBE_EVERY)
        return f"which goes after the relay answers a probe (every {every}, less often after failed tries)"
    if kind in ("busy", "login required"):
        return "which goes as soon as the relay takes a mail"
    return "which waits for its next try"  # our sender refused: a bounce taken proves nothing of it


def failed_lines(mail: OutboxHealth) -> list[str]:
    """Mail given up on, with the last one's reason, and bounces lost to a refused null sender."""
    lines: list[str] = []
    if mail.failed_day:
        last = f"; the last: {one_line(relay_reply(mail.last_failed)[1])}" if mail.last_failed else ""
        lines.append(
            f"outbox    {mail.failed_day} mail(s) given up on in the last 24 h"
            f" (see `smsgw outbox list --state failed`){last}"
        )
    if mail.null_refused:
        lines.append(f"{'':9} trouble: {mail.null_refused} bounce(s) refused: {NULL_SENDER_REFUSED}")
    return lines


# The relay login's fields in the status file, and what each must be to be read (a hand-edited or
# damaged file raised out of `smsgw status`, which then said nothing of the rest).
_NUMBERS = ("for_seconds", "last_seconds_ago", "next_login_in_seconds", "failed_logins")
_TEXTS = ("state", "by", "reply")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and abs(value) < YEARS_100 else None


def _read_login(status: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """The relay login's fields as read, and the names of those unreadable (left out); None while
    logins go."""
    login = status.get("relay_login")
    if login is None:
        return None
    if not isinstance(login, dict):
        return {}, ["relay_login"]
    read: dict[str, Any] = {}
    bad: list[str] = []
    for name in _NUMBERS:
        if name in login and (read_as := _number(login[name])) is None:
            bad.append(name)
        elif name in login:
            read[name] = read_as
    if login.get("state") not in STATES:
        bad.append("state")
    for name in _TEXTS:
        if name in login and not isinstance(login[name], str):
            bad.append(name)
        elif name in login:
            read[name] = login[name]
    mechanisms = login.get("mechanisms", [])
    if isinstance(mechanisms, list) and all(isinstance(m, str) for m in mechanisms):
        read["mechanisms"] = mechanisms
    else:
        bad.append("mechanisms")
    return read, bad


def relay_login_json(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """The relay login's episode as the daemon's status file has it, with `since` and `last_at`
    (Unix times) for its `for_seconds` and `last_seconds_ago` (None where unreadable, named in
    `unreadable`); None while logins go."""
    found = _read_login(status or {})
    if status is None or found is None:
        return None
    login, bad = found
    written = _number(status.get("updated_at"))
    if written is None:
        bad.append("updated_at")
    ago = {"since": login.get("for_seconds"), "last_at": login.get("last_seconds_ago")}
    at = {k: None if v is None or written is None else round(written - v, 1) for k, v in ago.items()}
    return {**login, **at, **({"unreadable": bad} if bad else {})}


def relay_login_lines(status: dict[str, Any] | None, now: float) -> list[str]:
    """`relay     login refused since …`: while held no send logs in, and mail waits saying only
    that a probe has to get through; `login failing for now` after a 454, until a login is taken or
    a mail goes; `login impossible` with no mechanism in common; `login waits` for the budget of
    failed logins after a restart. A field the file does not hold readably is said, not raised."""
    login = relay_login_json(status)
    if status is None or login is None:
        return []
    lines = []
    if bad := login.get("unreadable"):
        lines.append(f"relay     login: the status file's relay_login has unreadable {', '.join(bad)}")
    if login.get("state") not in STATES:
        return lines
    mechanisms = ", ".join(str(m) for m in login.get("mechanisms") or ()) or "-"
    said = one_line(login.get("reply") or "no reply")
    since = (
        "since ?" if login["since"] is None else f"since {when(login['since'])} ({_age(login['since'], now)})"
    )
    written = _number(status.get("updated_at"))
    elapsed = 0.0 if written is None else now - written
    next_in = age(max((login.get("next_login_in_seconds") or 0.0) - elapsed, 0.0))
    failed = int(login.get("failed_logins") or 0)
    state = login["state"]
    if state == REFUSED:
        lines.append(
            f"relay     login refused ({mechanisms}) {since}: {said}; no mail logs in until a probe's login"
            f" is taken (the next in {next_in}, {failed} failed login(s) so far); a password fixed in the"
            " config goes at once after a restart"
        )
    elif state == FAILING:
        last = login["last_at"]
        last = "" if last is None else f", the last at {when(last)} ({_age(last, now)} ago)"
        lines.append(
            f"relay     login failing for now ({mechanisms}) {since}{last}: {said}; the relay's own"
            " authentication trouble (RFC 4954), not our password: mail stays queued until a login is"
            f" taken or a mail goes, the next login in {next_in}"
        )
    elif state == NO_COMMON:
        lines.append(
            f"relay     login impossible {since}: {said}; mail stays queued until the relay offers one of"
            " those, or [mail] relay_username is left out for a relay taking mail without a login"
        )
    else:
        lines.append(
            f"relay     login waits {since}: {failed} failed login(s) in the last {age(FINDTIME)}, before a"
            f" restart too ({said}); the next in {next_in}, so that the relay's fail2ban or lockout sees"
            f" no more than {MOST_FAILED}"
        )
    return lines


def _age(at: float, now: float) -> str:
    return age(max(now - at, 0.0))
