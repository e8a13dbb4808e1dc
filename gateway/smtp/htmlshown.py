"""What of an HTML body a reader sees, and how its inline elements run together, for gateway.smtp.htmlbody,
which reads the parsed tree through inscriptis: inscriptis writes every element's text unless the style
says "display: none" exactly, and its default profile pads each <span> with spaces.

Hidden text: newsletters and notification systems put a preheader (the line an inbox previews) or a
tracking code in an element no mail program shows, "display:none !important; mso-hide:all", and pad
it with invisible characters: it went to the phone first, ahead of the alert, and its ZWNJs forced
UCS-2. Dropped: the `hidden` attribute; display none or opacity 0 (nothing inside can undo them); a
box of zero height or width that clips what overflows; and text under visibility hidden or a zero
font size, which a descendant can undo ("visibility: visible", a font size of its own: templates set
"font-size:0" on a cell to close the gaps between its columns and size the text inside), so that
text stays. "mso-hide: all" alone hides nothing: it hides only from desktop Outlook, which templates
give a copy of their own in an "<!--[if mso]>" comment. The style is parsed as declarations,
whatever their case, spacing or "!important": "visibility: visible" is no "hidden". A mail that
would keep no text keeps it all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inscriptis.css_profiles import RELAXED_CSS_PROFILE
from inscriptis.html_properties import Display
from inscriptis.model.html_element import HtmlElement as CssElement
from lxml.html import HtmlElement

# A <span> is inline: "Dzi<span lang=PL>ę</span>kuj<span lang=PL>ę</span>" (Word's language and
# spelling spans) reached the phone as "Dzi ę kuj ę", a door code "48<span>21</span>#" as "48 21 #".
# The relaxed profile pads no other inline element (a, b, i, em, strong, font, u, small, sub, sup).
CSS = RELAXED_CSS_PROFILE | {"span": CssElement(display=Display.inline)}

# Whether the markup may hide anything: most mails hide nothing, and the walk of the tree costs more.
_HINT = re.compile(r"hidden|display|font-size|opacity", re.IGNORECASE)
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_IMPORTANT = re.compile(r"\s*!\s*important\s*$")
_LENGTH = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))\s*([a-z%]*)")
# Units that size a font from the parent's (zero stays zero); any other size is a size of its own.
_RELATIVE = ("em", "ex", "ch", "%", "cap", "ic", "lh")
_NOT_SHOWN = ("head", "style", "script", "title", "template")


def declarations(style: str) -> dict[str, str]:
    """A style attribute's declarations, property to value, lowered and without "!important"; of a
    property declared twice the later wins, unless only the earlier is important."""
    out: dict[str, str] = {}
    important: set[str] = set()
    for declaration in _COMMENT.sub("", style).split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if not colon or not name:
            continue
        strong = _IMPORTANT.search(value) is not None
        if name in important and not strong:
            continue
        out[name] = _IMPORTANT.sub("", value)
        if strong:
            important.add(name)
    return out


def _zero(value: str | None) -> bool:
    m = _LENGTH.fullmatch(value or "")
    return m is not None and float(m.group(1)) == 0


def _font_size(value: str | None, inherited: bool) -> bool:
    """Whether text at this font size is unseen, given whether the parent's is."""
    if value is None or value in ("inherit", "unset", "smaller", "larger"):
        return inherited
    m = _LENGTH.fullmatch(value)
    if m is None:
        return False  # a keyword ("small", "initial"): a size of its own
    if float(m.group(1)) == 0:
        return True
    return inherited and m.group(2) in _RELATIVE


@dataclass(slots=True)
class _Plan:
    drop: list[HtmlElement]
    blank_text: list[HtmlElement]
    blank_tail: list[HtmlElement]
    shown: bool = False


def _gone(element: HtmlElement, style: dict[str, str]) -> bool:
    """Hidden with everything inside it, whatever that says. Not for "mso-hide: all" alone: it hides
    only from desktop Outlook, which templates give the same text in an "<!--[if mso]>" comment."""
    clipped = style.get("overflow") == "hidden" or "hidden" in (
        style.get("overflow-y"),
        style.get("overflow-x"),
    )
    boxed = any(_zero(style.get(p)) for p in ("max-height", "height", "max-width", "width"))
    return (
        element.get("hidden") is not None
        or style.get("display") == "none"
        or _zero(style.get("opacity"))
        or (clipped and boxed)
    )


def _note(plan: _Plan, element: HtmlElement, text: str | None, unseen: bool, into: list[HtmlElement]) -> None:
    if text and text.strip():
        if unseen:
            into.append(element)
        else:
            plan.shown = True


def _walk(element: HtmlElement, unseen: bool, tiny: bool, plan: _Plan) -> None:
    """Plan what goes of what `element` holds (its own text is under hidden visibility or a zero font
    size when `unseen` or `tiny` says so), noting whether any text stays."""
    for child in element:
        if isinstance(child.tag, str):  # not a comment or a processing instruction
            style = declarations(child.get("style") or "")
            if _gone(child, style):
                plan.drop.append(child)
            elif child.tag not in _NOT_SHOWN:
                visibility = style.get("visibility")
                hid = unseen if visibility is None else visibility in ("hidden", "collapse")
                small = _font_size(style.get("font-size"), tiny)
                _note(plan, child, child.text, hid or small, plan.blank_text)
                _walk(child, hid, small, plan)
        _note(plan, child, child.tail, unseen or tiny, plan.blank_tail)


def drop_hidden(tree: HtmlElement, markup: str) -> None:
    """Remove what no mail program shows of the tree of `markup` (see the module's docstring), when
    some text stays."""
    if _HINT.search(markup) is None:
        return
    plan = _Plan([], [], [])
    _walk(tree, False, False, plan)
    if not (plan.drop or plan.blank_text or plan.blank_tail) or not plan.shown:
        return
    for element in plan.blank_text:
        element.text = None
    for element in plan.blank_tail:
        element.tail = None
    for element in plan.drop:
        element.drop_tree()  # what it holds, not the text after it
