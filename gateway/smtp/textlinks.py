"""Links in a mail's text: which targets are worth their characters on a phone (`link_target`, one rule
for HTML links and plain-text ones), and Outlook's plain-text "text<target>" links rewritten to follow it.

Apart from `gateway.smtp.textclean` because this is no cutting rule: it decides what a link costs in
parts, and `gateway.smtp.htmlbody` asks it too, while textclean only calls it once its cuts are done.
"""

from __future__ import annotations

import re

# Link targets a phone can open; mailto:, javascript:, tel:, cid: and in-page anchors are not shown.
_SHOWN_SCHEMES = ("http://", "https://", "ftp://")
_LOOKS_LIKE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
# A target is worth its characters when a person could read or type it: a meeting link
# (meet.google.com/… is 36 characters, a Zoom link with its password about 76) is the point of the
# mail, a click-tracking URL of newsletters and booking systems (several hundred characters each) is
# not, and three of those turned a 62-character notice into 10 parts cut off mid-URL. 80 characters
# keep the meeting links and cost at most about one more part: a UCS-2 part (any Polish letter)
# carries 67 characters, a GSM 7-bit one 153. A longer target is left out and the text stays as the
# mail shows it.
_MAX_TARGET = 80
# All the targets of one mail together, in document order, take at most one GSM 7-bit part's worth:
# two meeting links fit, twenty short links of a newsletter would still multiply its parts.
TARGETS_BUDGET = 160
# Browsers drop tabs and line breaks anywhere in a URL (the WHATWG URL parser): an href wrapped by the
# program that wrote the mail opens as one address, so it is shown as one.
_URL_DROPPED = str.maketrans("", "", "\t\r\n")
# Outlook's plain text (the text/plain part it writes beside the HTML, or all it sends) puts a link's
# target right after the link's last word, in angle brackets: "biuro@acme.pl<mailto:biuro@acme.pl>",
# "spotkania<https://teams.microsoft.com/l/meetup-join/…>". A mail's 40-character sentence with a
# Teams link went out as 3 UCS-2 parts. With a space between ("anna@acme.pl <mailto:anna@acme.pl>")
# only a mailto: that repeats the word goes: "see <https://…>" is how a person writes a URL too.
# Each match starts at a word's start, or a line of one long word would be scanned from each letter.
_OUTLOOK_LINK = re.compile(
    r"(?<![^\s<>])([^\s<>]++)([ \t]?)<((?:https?|ftp)://[^\s<>]+|mailto:[^\s<>]+)>", re.IGNORECASE
)
# What may stand before a link's text in its word: "(spotkania<https://…>)".
_OPENING = "([{\"'„«‚"


def link_target(text: str, href: str, budget: int) -> str | None:
    """The target to show after a link's text, or None; one rule for HTML links (gateway.smtp.htmlbody)
    and Outlook's plain-text ones. A text that is already a URL (or Outlook's safe-links wrapper
    around the one shown) stays alone, and a link with no text (an image) adds nothing. A target is
    shown only when it is short (`_MAX_TARGET`) and fits what is left of the mail's `budget`
    (`TARGETS_BUDGET` at first; the caller subtracts what it showed): each character is paid for in
    parts, and a tracking URL tells the reader nothing."""
    href = href.translate(_URL_DROPPED).strip()
    if not href.lower().startswith(_SHOWN_SCHEMES) or len(href) > min(_MAX_TARGET, budget):
        return None
    text = " ".join(text.split())
    if not text or _LOOKS_LIKE_URL.match(text) or _bare(text) == _bare(href):
        return None
    return href


def _bare(url: str) -> str:
    """A URL as people write it in text: no scheme, no "www.", no trailing slash, any case."""
    url = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url.strip(), flags=re.IGNORECASE)
    return url.removeprefix("www.").rstrip("/").casefold()


def outlook_links(lines: list[str]) -> list[str]:
    """Outlook's "text<target>" as an HTML link of the mail is shown (`link_target`): "spotkania
    (https://…)" when the target is worth showing, else the text alone; a mailto: target never shows."""
    budget = TARGETS_BUDGET

    def one(match: re.Match[str]) -> str:
        nonlocal budget
        word, space, href = match.groups()
        if href[:7].lower() == "mailto:":
            address = href[7:].partition("?")[0]
            if space and address.casefold() != word.casefold():
                return match.group(0)
            return word
        if space:
            return match.group(0)
        shown = link_target(word.lstrip(_OPENING), href, budget)
        if shown is None:
            return word
        budget -= len(shown)
        return f"{word} ({shown})"

    return [_OUTLOOK_LINK.sub(one, line) if "<" in line else line for line in lines]
