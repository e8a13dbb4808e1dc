"""What of an HTML body a reader sees, and how its inline elements run together, for gateway.smtp.htmlbody,
which reads the parsed tree through inscriptis: inscriptis writes every element's text unless the style
says "display: none" exactly, and its default profile pads each <span> with spaces.

Hidden text: newsletters and notification systems put a preheader (the line an inbox previews) or a
tracking code in an element no mail program shows, "display:none !important; mso-hide:all", and pad
it with invisible characters: it went to the phone first, ahead of the alert, and its ZWNJs forced
UCS-2. Dropped: the `hidden` attribute; display none or opacity 0 (nothing inside can undo them); a
box of zero height or width, without padding, that clips what overflows (not a table cell: browsers
widen it to its text); and text under visibility hidden or a zero font size, which a descendant can
undo ("visibility: visible", a font size of its own, also <font size=3> or "font: 14px Arial":
templates set "font-size:0" on a cell to close the gaps between its columns and size the text
inside), so that text stays. Where a <style> block sets font sizes, any element may be sized by it,
so only the zero-size element's own text goes. "mso-hide: all" alone hides nothing: it hides only
from desktop Outlook, which templates give a copy of their own in an "<!--[if mso]>" comment. The
style is parsed as declarations, whatever their case, spacing or "!important": "visibility:
visible" is no "hidden". A mail that would keep no text keeps it all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
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
_HINT = re.compile(r"hidden|display|font-size|font\s*:|opacity", re.IGNORECASE)
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_IMPORTANT = re.compile(r"\s*!\s*important\s*$")
_LENGTH = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))\s*([a-z%]*)")
# Units that size a font from the parent's (zero stays zero); any other size is a size of its own.
_RELATIVE = ("em", "ex", "ch", "%", "cap", "ic", "lh")
_NOT_SHOWN = ("head", "style", "script", "title", "template")
# The font size keywords of the "font" shorthand; before them its style, variant and weight words.
_SIZE_WORDS = ("xx-small", "x-small", "small", "medium", "large", "x-large", "xx-large", "xxx-large")
_SIZE_WORDS += ("smaller", "larger", "inherit", "unset", "initial", "revert")
# A legacy <font size>: "3", "+1", "-2"; any such is a size of its own (HTML maps it to a keyword).
_FONT_ATTR = re.compile(r"\s*[+-]?\d")
# A stylesheet that may size text: then any element may be sized by a class, an id or its tag.
_SHEET_SIZES = re.compile(r"font(?:-size)?\s*:", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def declarations(style: str) -> Mapping[str, str]:
    """A style attribute's declarations, property to value, lowered and without "!important"; of a
    property declared twice the later wins, unless only the earlier is important. Kept per style: a
    template repeats one on each of its thousands of cells, and reading it again was most of the walk."""
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


def _size(element: HtmlElement, style: Mapping[str, str]) -> str | None:
    """The font size `element` sets itself, if any: "font-size", the "font" shorthand's size (the
    token before any "/line-height"), or a <font size> attribute (which styles override)."""
    if "font-size" in style:
        return style["font-size"]
    for token in style.get("font", "").split():
        token = token.partition("/")[0]
        if token in _SIZE_WORDS:
            return token
        m = _LENGTH.fullmatch(token)
        if m is not None and (m.group(2) or float(m.group(1)) == 0):  # a bare number is a weight
            return token
    if element.tag == "font" and _FONT_ATTR.match(element.get("size") or ""):
        return "medium"
    return None


def _padded(style: Mapping[str, str], sides: tuple[int, int]) -> bool:
    """Whether the padding on `sides` (0 top, 1 right, 2 bottom, 3 left) is set and not zero: what the
    box holds shows in its padding whatever its height ("height:0; padding-bottom:56%")."""
    names = ("padding-top", "padding-right", "padding-bottom", "padding-left")
    values = style.get("padding", "").split()
    if values:  # the shorthand: 1 to 4 values, top, right, bottom, left
        full = [
            values[0],
            values[1 % len(values)],
            values[2 % len(values)],
            values[-1 if len(values) == 4 else 1 % len(values)],
        ]
    else:
        full = ["", "", "", ""]
    for side in sides:
        value = style.get(names[side], full[side])
        if value and not _zero(value):
            return True
    return False


@dataclass(slots=True)
class _Plan:
    drop: list[HtmlElement]
    blank_text: list[HtmlElement]
    blank_tail: list[HtmlElement]
    shown: bool = False


def _gone(element: HtmlElement, style: Mapping[str, str]) -> bool:
    """Hidden with everything inside it, whatever that says. Not for "mso-hide: all" alone: it hides
    only from desktop Outlook, which templates give the same text in an "<!--[if mso]>" comment."""
    return (
        element.get("hidden") is not None
        or style.get("display") == "none"
        or _zero(style.get("opacity"))
        or _zero_box(element, style)
    )


def _zero_box(element: HtmlElement, style: Mapping[str, str]) -> bool:
    """A box of no height or no width that clips what overflows it. A table cell is widened by the
    browser to what it holds, and padding shows what the box holds whatever its height."""
    if element.tag in ("td", "th"):
        return False
    clipped = style.get("overflow") == "hidden" or "hidden" in (
        style.get("overflow-y"),
        style.get("overflow-x"),
    )
    if not clipped:
        return False
    flat = any(_zero(style.get(p)) for p in ("max-height", "height")) and not _padded(style, (0, 2))
    narrow = any(_zero(style.get(p)) for p in ("max-width", "width")) and not _padded(style, (1, 3))
    return flat or narrow


def _note(plan: _Plan, element: HtmlElement, text: str | None, unseen: bool, into: list[HtmlElement]) -> None:
    if text and text.strip():
        if unseen:
            into.append(element)
        else:
            plan.shown = True


def _walk(element: HtmlElement, unseen: bool, tiny: bool, plan: _Plan, sheet: bool) -> None:
    """Plan what goes of what `element` holds (its own text is under hidden visibility or a zero font
    size when `unseen` or `tiny` says so), noting whether any text stays. With `sheet` (a <style>
    block sets font sizes) a child element may be sized by it: it inherits no zero size."""
    for child in element:
        if isinstance(child.tag, str):  # not a comment or a processing instruction
            style = declarations(child.get("style") or "")
            if _gone(child, style):
                plan.drop.append(child)
            elif child.tag not in _NOT_SHOWN:
                visibility = style.get("visibility")
                hid = unseen if visibility is None else visibility in ("hidden", "collapse")
                small = _font_size(_size(child, style), tiny and not sheet)
                _note(plan, child, child.text, hid or small, plan.blank_text)
                _walk(child, hid, small, plan, sheet)
        _note(plan, child, child.tail, unseen or tiny, plan.blank_tail)


def drop_hidden(tree: HtmlElement, markup: str) -> None:
    """Remove what no mail program shows of the tree of `markup` (see the module's docstring), when
    some text stays."""
    if _HINT.search(markup) is None:
        return
    plan = _Plan([], [], [])
    sheet = any(_SHEET_SIZES.search(style.text or "") for style in tree.iter("style"))
    _walk(tree, False, False, plan, sheet)
    if not (plan.drop or plan.blank_text or plan.blank_tail) or not plan.shown:
        return
    for element in plan.blank_text:
        element.text = None
    for element in plan.blank_tail:
        element.tail = None
    for element in plan.drop:
        element.drop_tree()  # what it holds, not the text after it
