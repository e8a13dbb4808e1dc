"""Links in a mail's text: which targets are worth their characters on a phone (`link_target`, one rule
for HTML links and plain-text ones), and Outlook's plain-text "text<target>" links rewritten to follow it.

Apart from `gateway.smtp.textclean` because this is no cutting rule: it decides what a link costs in
parts, and `gateway.smtp.htmlbody` asks it too, while textclean only calls it once its cuts are done.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote, urlsplit

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
    and Outlook's plain-text ones. The target is the one a filter's wrapper carries (`unwrapped`). A
    text that is already a URL (the target, or the wrapper around it) stays alone, and a link with no
    text (an image) adds nothing. A target is shown only when it is short (`_MAX_TARGET`) and fits
    what is left of the mail's `budget` (`TARGETS_BUDGET` at first; the caller subtracts what it
    showed): each character is paid for in parts, and a tracking URL tells the reader nothing."""
    href = unwrapped(href.translate(_URL_DROPPED).strip())
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


# Mail filters rewrite every link of a mail to pass through their servers: Microsoft's Safe Links
# ("https://eur01.safelinks.protection.outlook.com/?url=<the target>&data=…&sdata=…", some 400
# characters that name the staff's address and the tenant), Proofpoint's URL Defense (v1 and v2
# "https://urldefense.proofpoint.com/v2/url?u=https-3A__acme.pl_z&d=…", v3
# "https://urldefense.com/v3/__https://acme.pl/z__;!!…$") and Google's "https://www.google.com/url?q=…"
# of Docs and Calendar mails. Sent whole, one link took three parts and its target was lost in it; a
# linked word's target was too long to show. The target is read from the wrapper's own parameter, as
# the wrapper would redirect to it: the network is never asked (the wrapper's own check of the target
# is the reader's to have, by opening it on the phone). Mimecast's URL Protect is left as written: its
# "https://protect-eu.mimecast.com/s/<token>" (now "url.<region>.m.mimecastprotect.com") carries no
# target, only a token its server resolves, and its "?domain=" host would open a home page, not the link.
_WRAPPER_HINT = re.compile(r"safelinks\.protection|urldefense|google\.", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
# What ends a sentence or a bracket after a URL in text, not the URL's own.
_TRAILING = ".,;:!?)]}"
_SAFELINKS_HOSTS = (".safelinks.protection.outlook.com", ".safelinks.protection.office365.us")
_PROOFPOINT_HOSTS = frozenset({"urldefense.com", "urldefense.proofpoint.com", "urldefense.us"})
_GOOGLE_HOST = re.compile(r"(www\.)?google\.[a-z]{2,3}(\.[a-z]{2})?")
# Proofpoint v3 writes each character its URL cannot hold as "*" (or a run of them as "**" and a
# letter for the run's length: A = 2, B = 3, …) and the characters, base64, after the URL.
_V3 = re.compile(r"/v3/__(.+?)__;([^!]*)!")
_V3_RUN = {c: n for n, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 2)}
_V3_TOKEN = re.compile(r"\*(\*.)?")
_NESTED_MAX = 3  # a Safe Links wrapper around a Proofpoint one: each is taken off


def unwrapped(url: str) -> str:
    """The target a filter's wrapper carries, or `url` itself when it is no wrapper (or carries no
    web address: a wrapper is never made to say something that could not be opened)."""
    for _ in range(_NESTED_MAX):
        target = _target(url)
        if target is None:
            break
        url = target
    return url


def unwrap_in_text(text: str) -> str:
    """Each wrapper's URL in a text (a plain-text part, a URL an HTML mail shows) as its target."""
    # Nearly every mail: no URL, or none of a wrapper's; the substring first (the pattern costs 2 µs).
    if "://" not in text or _WRAPPER_HINT.search(text) is None:
        return text

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = len(url) - len(url.rstrip(_TRAILING))
        url, after = (url[:-tail], url[-tail:]) if tail else (url, "")
        return unwrapped(url) + after

    return _URL_IN_TEXT.sub(one, text)


def _target(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    target: str | None = None
    if host.endswith(_SAFELINKS_HOSTS):
        target = _param(parts.query, "url")
    elif host in _PROOFPOINT_HOSTS and parts.path.startswith("/v3/__"):
        target = _proofpoint_v3(url)
    elif host in _PROOFPOINT_HOSTS and parts.path in ("/v1/url", "/v2/url"):
        target = _param(parts.query, "u")
        if target is not None and parts.path == "/v2/url":
            target = unquote(target.translate(str.maketrans("-_", "%/")))
    elif _GOOGLE_HOST.fullmatch(host) and parts.path == "/url":
        target = _param(parts.query, "q") or _param(parts.query, "url")
    if target is None or not target.lower().startswith(_SHOWN_SCHEMES[:2]) or not target.isprintable():
        return None
    return target if " " not in target and target != url else None


def _param(query: str, name: str) -> str | None:
    """A query parameter, percent-decoded once ("+" stays: the wrappers encode a space as %20)."""
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return unquote(value)
    return None


def _proofpoint_v3(url: str) -> str | None:
    match = _V3.search(url)
    if match is None:
        return None
    encoded, chars = match.groups()
    try:
        replaced = base64.urlsafe_b64decode(chars + "=" * (-len(chars) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    out: list[str] = []
    at = 0
    pos = 0
    for token in _V3_TOKEN.finditer(encoded):
        count = _V3_RUN.get(token.group(0)[-1], 0) if token.group(1) else 1
        if not count or at + count > len(replaced):
            return None
        out += [encoded[pos : token.start()], replaced[at : at + count]]
        at += count
        pos = token.end()
    return unquote("".join([*out, encoded[pos:]]))
