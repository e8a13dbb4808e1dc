"""What Outlook, Teams, Zoom and Webex write into the text of a meeting mail for a computer, not a phone:
the online meeting's join block (links, meeting ID, passcode, dial-in numbers) and classic Outlook's
"When: … (UTC+01:00) Belgrade, Bratislava… / Where: … / Note: The GMT offset above… / *~*~*~*~*"
header above an invitation's text. The join block cost three billed parts per invitation and is no
use on a phone; the header repeats the time and place, which the invitation's calendar part gives the
phone once, in the gateway's zone (`gateway.smtp.intake._with_invite`). Without a calendar part (an
appointment forwarded as text) its When and Where are the only time and place, and stay, without
Windows' list of cities.

Its own module because these are tables of another vendor's wording, apart from quote cutting
(`gateway.smtp.textclean`), which calls it. Every mail passes here: each rule starts with a substring
test that is false for nearly all of them, before any regular expression runs.
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.smtp.charsets import payload_bytes
from gateway.smtp.invitation import Invite, invite

JOIN_BLOCK = "online meeting join details"
INVITE_HEADER = "Outlook's When/Where lines (the invitation's time and place are sent)"
OUTLOOK_NOTE = "Outlook's time zone note"

# The first line of a join block (casefolded, after the rule that opens it, if any). Teams in English
# and in Polish, in its older ("Microsoft Teams meeting / Join on your computer…") and newer
# ("Microsoft Teams Need help? / Join the meeting now") forms; Zoom's and Webex's invitation text.
_JOIN_HEADS = (
    "microsoft teams meeting",
    "microsoft teams need help",
    "microsoft teams",
    "spotkanie w aplikacji microsoft teams",
    "spotkanie w microsoft teams",
    "dołącz do spotkania w aplikacji microsoft teams",
    "microsoft teams potrzebujesz pomocy",
    "join zoom meeting",
    "dołącz do spotkania zoom",
    "when it's time, join the webex meeting here",
    "join webex meeting",
)
# Lines that only a join block holds; one of them must follow its first line closely.
_JOIN_SIGNS = re.compile(
    r"^(meeting id|identyfikator spotkania|passcode|kod dostępu|meeting number|numer spotkania"
    r"|meeting password|hasło spotkania|join on your computer|dołącz na komputerze|click here to join"
    r"|kliknij tutaj, aby dołączyć|join the meeting now|dołącz do spotkania teraz)"
    r"|teams\.microsoft\.com/|zoom\.us/j/|\.webex\.com/"
)
_INVITED_BY = ("inviting you to a scheduled zoom meeting", "zaprasza cię na zaplanowane spotkanie zoom")
_RULE = re.compile(r"^_{20,}$")
_SIGN_WINDOW = 8  # lines after the first one in which a sign must show
_BLOCK_MAX = 60  # a join block with dial-in numbers for many countries; longer is someone's text

# Classic Outlook's invitation header, English and Polish Outlook.
_WHEN = re.compile(r"^(when|kiedy)\s*:\s*\S", re.IGNORECASE)
_WHERE = re.compile(r"^(where|gdzie)\s*:", re.IGNORECASE)
_NOTE = re.compile(r"^(note|uwaga)\s*:.{0,40}\bgmt\b", re.IGNORECASE)
_STARS = re.compile(r"^(\*~){4,}\*?$")
# Windows' name of a zone after the time: " (UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague."
_ZONE_TAIL = re.compile(r"\s*\(UTC(?:[+-]\d\d:\d\d)?\)[^()]*$")


def cut_meeting_text(text: str, lines: list[str], removed: list[str], *, invitation: bool) -> list[str]:
    """`lines` without join blocks and, at their top, Outlook's invitation header. `text` is the
    body the lines came from (its substrings decide cheaply whether any rule can apply);
    `invitation`: the mail carries the invitation's calendar part, which says the time and place."""
    if "Teams" in text or "Zoom" in text or "Webex" in text:
        lines = _cut_join_blocks(lines, removed)
    return _cut_invite_header(lines, removed, invitation)  # one look at the first line


def opens_invite_header(line: str) -> bool:
    """Whether a stripped line may open Outlook's invitation header ("When: …"): only then can
    `cut_meeting_text` change a body of one line."""
    return _WHEN.match(line) is not None


def _next_text(lines: list[str], start: int) -> int:
    while start < len(lines) and not lines[start].strip():
        start += 1
    return start


def _is_head(line: str, *, ruled: bool) -> bool:
    """Below Outlook's rule the first line may run on ("Microsoft Teams meeting <link>"); without the
    rule only the whole line is a head, never a sentence that starts with "Microsoft Teams"."""
    folded = line.strip().casefold().rstrip(" .:!?")
    return any(folded == head or (ruled and folded.startswith(head + " ")) for head in _JOIN_HEADS)


def _cut_join_blocks(lines: list[str], removed: list[str]) -> list[str]:
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        ruled = bool(_RULE.match(line))
        head = _next_text(lines, i + 1) if ruled else i
        found = head < len(lines) and (ruled or line) and _is_head(lines[head], ruled=ruled)
        if found and _signed(lines, head):
            end = _block_end(lines, head, line if ruled else None)
            if end is not None:
                i = i if ruled else _invited_by(lines, i)
                lines = lines[:i] + lines[end:]
                removed.append(JOIN_BLOCK)
                continue
        i += 1
    return lines


def _invited_by(lines: list[str], head: int) -> int:
    """Zoom puts "Jan Kowalski is inviting you to a scheduled Zoom meeting." above its heading."""
    before = head - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before >= 0 and any(w in lines[before].casefold() for w in _INVITED_BY):
        return before
    return head


def _signed(lines: list[str], head: int) -> bool:
    window = lines[head + 1 : head + 1 + _SIGN_WINDOW]
    return any(_JOIN_SIGNS.search(line.strip().casefold()) for line in window)


def _block_end(lines: list[str], head: int, rule: str | None) -> int | None:
    """After the closing rule (the last one as long as the opening rule, within the block's reach:
    newer Teams blocks hold a shorter rule inside); without a rule, the block runs to the end."""
    reach = lines[head + 1 : head + 1 + _BLOCK_MAX]
    if rule is not None:
        closing = [k for k, line in enumerate(reach) if line.strip() == rule]
        if closing:
            return head + 1 + closing[-1] + 1
    return len(lines) if len(lines) - head <= _BLOCK_MAX else None


def _cut_invite_header(lines: list[str], removed: list[str], invitation: bool) -> list[str]:
    i = _next_text(lines, 0)
    if i == len(lines) or not _WHEN.match(lines[i].strip()):
        return lines
    found = _invite_header(lines, i)
    if found is None:
        return lines  # no sign of Outlook: a person's own "When: tomorrow" line
    when, header_end, end, signed = i, *found
    if invitation:
        removed.append(INVITE_HEADER)
        return lines[end:]
    zone = _ZONE_TAIL.search(lines[when].strip())
    kept = [lines[when].strip()[: zone.start()] if zone else lines[when], *lines[when + 1 : header_end]]
    if signed:
        removed.append(OUTLOOK_NOTE)
    return [*lines[:when], *kept, *lines[end:]]


def _invite_header(lines: list[str], when: int) -> tuple[int, int, bool] | None:
    """Where Outlook's header opening at its "When:" line `when` ends: past its "Where:" line, past
    its GMT note and its "*~*~*" rule, and whether either of those two is there; None without a sign
    of Outlook (the note, the rule or Windows' zone after the time)."""
    where = _next_text(lines, when + 1)
    end = where + 1 if where < len(lines) and _WHERE.match(lines[where].strip()) else when + 1
    header_end = end
    note = stars = None
    k = _next_text(lines, end)
    if k < len(lines) and _NOTE.match(lines[k].strip()):
        note, end = k, k + 1
        k = _next_text(lines, end)
    if k < len(lines) and _STARS.match(lines[k].strip()):
        stars, end = k, k + 1
    if note is None and stars is None and _ZONE_TAIL.search(lines[when].strip()) is None:
        return None
    return header_end, end, note is not None or stars is not None


def above_invite_header(text: str) -> str:
    """A cancellation's text above Outlook's header of the cancelled meeting ("Kiedy: … / Gdzie: …
    / *~*~*"), which Outlook puts below the organiser's note, with the invitation's old text below
    it: the note alone is what was written for this mail. The text whole without such a header."""
    if "When" not in text and "Kiedy" not in text and "when" not in text and "kiedy" not in text:
        return text
    lines = text.split("\n")
    at = next(
        (i for i, line in enumerate(lines) if _WHEN.match(line.strip()) and _invite_header(lines, i)), None
    )
    return text if at is None else "\n".join(lines[:at])


# The calendar of Outlook and Exchange: its cancellation's text is what the organiser wrote (Outlook's
# When/Where lines above it aside), unlike Google Calendar's, which is its own boilerplate.
_OUTLOOK_CALENDAR = re.compile(rb"(?im)^PRODID:[^\r\n]*(microsoft|outlook)")


def outlook_cancellation(part: Message, fallbacks: tuple[str, ...], zone: str) -> Invite | None:
    """The cancelled meeting's title and start, when a text/calendar part is Outlook's cancellation
    (METHOD:CANCEL from Microsoft's calendar): its mail's text is the organiser's note ("Przepraszam,
    przenosimy na czwartek 10:00."), which went unsent with the text of answers. The place is left
    out: a cancelled meeting is held nowhere."""
    if _OUTLOOK_CALENDAR.search(payload_bytes(part)[:4096]) is None:
        return None
    meeting = invite(part, fallbacks, zone, method="CANCEL")
    return Invite(meeting.summary, meeting.start, "") if meeting is not None else None
