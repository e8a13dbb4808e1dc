"""Where the header of a quoted or forwarded message begins in a mail's body: a header block as
Outlook and others write it ("From:/Sent:/To:/Subject:", the Polish, German and French labels) or a
reply attribution ("On … wrote:", "Dnia … napisał(a):"), wrapped over up to three lines.

Its own module because telling such a header from a person's own line ("Od: 10:00", "On my way.")
is one judgement with its own tables, which `gateway.smtp.textclean` asks wherever it cuts quotes.
"""

from __future__ import annotations

import re

# Reply attributions ("On <date>, <name> wrote:"). Clients wrap them, so up to three lines are joined.
# The last, generic rule ("<name> wrote:") only counts when a `>` quote follows. Each ends in `:$`
# (`attribution_end` tries none on a line without a colon at its end).
ATTRIBUTIONS: tuple[tuple[re.Pattern[str], bool], ...] = (
    # "wrote to <number>:" is the header above the quoted SMS in the gateway's own reply mails
    (re.compile(r"^on\b.{0,300}\bwrote(\s+to\s+[^:]{1,80})?\s?:$"), False),
    (re.compile(r"^w dniu\b.{0,300}\b(pisze|napisał|napisała|napisał\(a\))\s?:$"), False),
    (re.compile(r"^dnia\b.{0,300}\b(napisał|napisała|napisał\(a\)|pisze)\s?:$"), False),
    # That header where `[gateway] language = "pl"`, in the form the gateway writes it alone: read
    # as any "dnia … napisano do …:", it cut a person's own sentence ("Dnia 5 maja napisano do
    # Pana:") and all below it from their SMS.
    (
        re.compile(r"^dnia \d{4}-\d{2}-\d{2} \d{2}:\d{2} (napisano|.{1,200} napisał\(a\)) do [^:]{1,80}:$"),
        False,
    ),
    (re.compile(r"^wiadomość napisana przez\b.{0,300}:$"), False),
    (re.compile(r"^am\b.{0,300}\bschrieb\b.{0,120}:$"), False),
    (re.compile(r"^le\b.{0,300}\ba écrit\s?:$"), False),
    (re.compile(r"^.{1,200}\b(wrote|writes|napisał|napisała|napisał\(a\)|pisze|schrieb)\s?:$"), True),
)
# Polish Gmail puts the date first ("śr., 11 gru 2019 o 10:49 Jan Kowalski" / "<jan@x.pl> napisał(a):").
_ATTRIBUTION_START = re.compile(
    r"^(?:(?:on|w dniu|dnia|am|le|wiadomość napisana)\b|(?:pon|wt|śr|czw|pt|sob|niedz|nd)\.,\s)"
)

# Header blocks of a quoted message (Outlook "From:/Sent:/To:/Subject:", Polish "Od:/Wysłano:/Do:/
# Temat:", Thunderbird's "Nadawca:/Adresat:"), optionally bold-starred by a plain-text rendering.
_HEADER_LINE = re.compile(
    r"^\*?(from|od|nadawca|von|de|sent|date|data|wysłano|wysłane|gesendet|datum|to|do|adresat|an|cc|dw"
    r"|kopia|bcc|udw|subject|temat|betreff|objet|reply-to|importance|priorytet)\*?\s*:\*?\s*(.*)$",
    re.IGNORECASE,
)
_FROM_LABELS = frozenset({"from", "od", "nadawca", "von", "de"})
_SENT_LABELS = frozenset({"sent", "wysłano", "wysłane", "gesendet"})
_DATE_LABELS = _SENT_LABELS | {"date", "data", "datum"}
_ADDRESSED_LABELS = frozenset({"to", "do", "adresat", "an", "subject", "temat", "betreff", "objet"})


def header_block_end(lines: list[str], start: int, *, after_rule: bool = False) -> int | None:
    """End index of a quoted message's header block starting at `start`, or None if there is none.

    Needs a sender line, a date/sent line and one more field, and either an Outlook "Sent:" line or an
    address in the sender line: "Od: 10:00 / Do: 12:00 / Temat: ..." written by a person is no header.
    `after_rule`: the block follows Outlook's `____` rule, which no one types above their own lines;
    there a sender, a date with a digit and a To or Subject line suffice (Outlook's HTML reply within
    one company: "Od: Jan Kowalski / Data: czwartek, 3 grudnia 2026 10:00 / Do: Anna Nowak").
    """
    labels: dict[str, str] = {}
    i = start
    while i < len(lines) and i - start < 12:
        m = _HEADER_LINE.match(lines[i].strip())
        if not m:
            break
        labels.setdefault(m.group(1).lower(), m.group(2))
        i += 1
    sender = next((v for k, v in labels.items() if k in _FROM_LABELS), None)
    if sender is None or len(labels) < 3 or not labels.keys() & _DATE_LABELS:
        return None
    if labels.keys() & _SENT_LABELS or "@" in sender:
        return i
    if (
        after_rule
        and labels.keys() & _ADDRESSED_LABELS
        and any(ch.isdigit() for k, v in labels.items() if k in _DATE_LABELS for ch in v)
    ):
        return i
    return None


def attribution_end(lines: list[str], start: int) -> tuple[int, bool] | None:
    """(end index, needs a `>` quote after it) if an attribution starts at `start`, else None."""
    first = lines[start].strip().casefold()
    if not first:
        return None
    joined = first
    for extra in range(3):
        # Every attribution ends in a colon: a line without one (nearly every line of a mail) is
        # none, and the generic rule's `.{1,200}\b` would try each of its positions to learn it.
        if joined.endswith((":", ":\n")):
            for pattern, needs_quote in ATTRIBUTIONS:
                if pattern.match(joined):
                    return start + extra + 1, needs_quote
        nxt = start + extra + 1
        if nxt >= len(lines) or not lines[nxt].strip() or not _ATTRIBUTION_START.match(first):
            return None
        following = lines[nxt].strip().casefold()
        whole = any(p.match(following) for p, generic in ATTRIBUTIONS if not generic)
        if whole or first.endswith((".", "!", "?")):
            # A sentence ("On my way.", "W dniu jutrzejszym biuro nieczynne."), or a line above an
            # attribution complete in itself: the person's own text, not the start of a wrapped one.
            return None
        joined = f"{joined} {following}"
    return None
