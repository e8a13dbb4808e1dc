"""Inline formatting of an HTML body that its text must show (gateway.smtp.htmlbody reads the tree
through inscriptis, which writes each element's text as it is): minutes set as a superscript after an
hour, and text struck out. Each rewrites the parsed tree before it is read.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

# Minutes set as a superscript after an hour, as Polish writes an hour in print ("godz. 10<sup>00</sup>"):
# as text they ran into the hour, "1000". The hour ends the text before them, with no space between;
# minutes other than "00" only after a word that names a time ("o 8<sup>30</sup>", "od … do …"):
# "2<sup>10</sup>" is a power.
_SUP_MINUTES = re.compile(r"[0-5]\d")
_HOUR_BEFORE = re.compile(r"(?<![\d.,:])(?:[01]?\d|2[0-3])$")
_TIME_WORD = re.compile(
    r"(?i:(?:\bgodz\w*\.?|\bo|\bod|\bdo|\bat|\bfrom|\buntil|\bto|[-–])\s*(?:[01]?\d|2[0-3])$)"
)


def hour_minutes(tree: HtmlElement) -> None:
    """Write two-digit minutes set as a superscript after an hour with a colon: "10:00", not "1000"."""
    for sup in tree.iter("sup"):
        if len(sup) or not _SUP_MINUTES.fullmatch((sup.text or "").strip()):
            continue
        before = sup.getprevious()
        text = (before.tail if before is not None else sup.getparent().text) or ""
        minutes = (sup.text or "").strip()
        if _HOUR_BEFORE.search(text) and (minutes == "00" or _TIME_WORD.search(text)):
            sup.text = ":" + minutes


# Struck-out text: <del>, <s>, <strike> or a style's "text-decoration: line-through". A changed offer
# ("Cena <del>1200 zł</del> 990 zł.", "Spotkanie <s>w poniedziałek</s> we wtorek") reached the phone
# with the old and the new value side by side, the struck one reading as valid. Not inside a struck
# element already (dropped with it); a mail that is struck out whole keeps its text. Only where the
# HTML is what is read: a plain-text alternative beside it wins (`mimebody._alternative`, R-1.3), and
# Outlook writes the struck words there unmarked, so they are sent (no line of it is matched to the HTML).
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
_STRUCK = (
    "self::del or self::s or self::strike"
    f" or contains(translate(@style, '{_UPPER}', '{_LOWER}'), 'line-through')"
)
_STRUCK_ALL = f"//*[{_STRUCK}][not(ancestor::*[{_STRUCK}])]"
_KEPT_TEXT = (
    f"//body//text()[normalize-space()][not(ancestor::*[{_STRUCK}] or ancestor::style or ancestor::script)]"
)
# Whether the markup may hold any: most mails hold none, and the search of the tree costs more.
_STRUCK_HINT = re.compile(r"<(?:del|s|strike)\b|line-through", re.IGNORECASE)


def drop_struck(tree: HtmlElement, markup: str) -> None:
    """Remove struck-out text (`_STRUCK`) from the tree of `markup`, the text after it kept, when some
    other text stays."""
    if _STRUCK_HINT.search(markup) is None:
        return
    struck = tree.xpath(_STRUCK_ALL)
    if struck and tree.xpath(_KEPT_TEXT):
        for element in struck:
            element.drop_tree()
