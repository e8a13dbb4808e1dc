"""What goes into the queue and what comes out of it, as plain data.

The acceptance service builds `Acceptance` from a parsed email; the dispatcher works on
`ClaimedPart`s; `Finished` tells the notifier that a message reached its final state; `ClockStep`
tells the repositories how far a step back of the wall clock moves the times they stored. Plain
data keeps the repositories free of the code paths that use them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewPart:
    seq: int
    data_coding: int
    payload: bytes
    udh: bytes
    text: str


@dataclass(slots=True)
class NewMessage:
    recipient: str
    source: str
    text: str
    coding: int
    parts: list[NewPart]
    concatenated: bool = False  # parts need a concat UDH built from a per-destination reference
    state: str = "queued"
    not_before: float | None = None  # quiet hours: held until then, validity counted from then


@dataclass(slots=True)
class Acceptance:
    """Everything one DATA turns into; written in one transaction or not at all."""

    mail_from: str
    client_ip: str | None
    account_id: int | None
    user_id: int | None
    header_message_id: str | None
    dedup_key: str | None
    subject: str
    text: str
    messages: list[NewMessage]
    validity_seconds: float
    automatic: str | None = None
    removed: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptResult:
    email_id: int | None
    message_ids: list[int]
    duplicates: int = 0  # recipients skipped because the same mail was accepted before
    refused: str | None = None  # SMTP reply of the policy check that refused the mail


@dataclass(frozen=True, slots=True)
class ClaimedPart:
    id: int
    message_id: int
    seq: int
    attempts: int
    destination: str
    source: str
    data_coding: int
    payload: bytes
    udh: bytes
    text: str
    expires_at: float


@dataclass(slots=True)
class Finished:
    """A message that reached a final state; the caller tells the sender."""

    message_id: int
    state: str
    reason: str | None
    account_id: int | None  # whose settings decide whether the sender is told (None: no account)


@dataclass(frozen=True, slots=True)
class ClockStep:
    """A step back of the wall clock, as the times stored before it are to be moved.

    A wait (a next try) always moves back by the whole step: it was stamped on the clock just
    before the step, and one that ends early costs a try sooner, never a message. A time that
    says when something happened (an SMS accepted, and the validity counted from it; an MO
    received) moves by what the step undoes of the clock it was stamped on: a step back that
    corrects forward steps seen earlier (`ahead`, which nobody moved, since a step forward is
    taken for time that passed) moves a time stamped before them by only the rest, and a time
    stamped after them by the whole step. Moved by the whole step, an SMS accepted before a
    step of 2 h forward and its correction would expire 2 h early; left unmoved, one accepted
    in between would live 2 h longer than its validity.
    """

    seconds: float  # the step back
    # Forward steps left unmoved before it, oldest first: (the clock's reading just before the
    # step, on the clock of the times stamped before it; its seconds).
    ahead: tuple[tuple[float, float], ...] = ()

    def moves(self) -> tuple[list[tuple[float, float]], float]:
        """How far a time moves back by when it was stamped: (stamped after this reading, this
        far), latest first, and how far one stamped before every forward step moves."""
        later: list[tuple[float, float]] = []
        left = self.seconds
        for since, forward in reversed(self.ahead):
            later.append((since, max(left, 0.0)))
            left -= forward
        return later, max(left, 0.0)

    def back_by(self, stamped: str) -> tuple[str, list[float]]:
        """SQL for how far a stored time moves back, by the time `stamped` (an SQL expression)
        when it was stamped, and its parameters in order."""
        later, oldest = self.moves()
        if not later:
            return "?", [oldest]
        sql, args = "CASE", []
        for since, back in later:
            sql += f" WHEN {stamped} > ? THEN ?"
            args += [since, back]
        return sql + " ELSE ? END", [*args, oldest]
