"""A page's form filled in again with what was posted from it, in the page's own HTML.

Server-side, so that it works without JavaScript: the page is rendered as always (the new session's
CSRF token, the settings as they are now), then the one form that was posted (the same action and
the same hidden keys, such as a users-page row's email) gets the posted values back: text fields,
text areas, checkboxes, radio buttons and selects, and the stamp of what the form was loaded with
(so that a change made meanwhile by someone else is still found when it is sent again). Never a
password, never the token. The page's HTML is the panel's own templates', so a small parser does.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, unquote, urlsplit

RESTORED = (
    '<p class="done" role="status" id="restored">Your session had ended before the form was sent: what'
    " you typed is back in it (a password is not). Check it and send it again.</p>"
)
_LEFT = ("password", "file", "submit", "button", "reset", "image")
_OWN = ("csrf", "loaded")  # hidden fields that are not the form's keys


def place(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A panel address as compared: its path and its query's pairs, in any order, without `done`
    (the notice of a save, not the page)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    return unquote(parts.path), tuple(sorted(query))


@dataclass
class _Tag:
    name: str
    attrs: list[tuple[str, str | None]]
    start: int
    end: int
    select: str | None = None  # an option's select
    text: str = ""  # an option's text
    inner: int = -1  # a textarea's content's end

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.attrs if k == key), None)

    def with_attr(self, key: str, value: str | None, on: bool = True) -> str:
        attrs = [(k, v) for k, v in self.attrs if k != key] + ([(key, value)] if on else [])
        inside = "".join(f" {k}" if v is None else f' {k}="{html.escape(v, quote=True)}"' for k, v in attrs)
        return f"<{self.name}{inside}>"


@dataclass
class _Form:
    tag: _Tag
    elements: list[_Tag] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lines = [0]
        for i, c in enumerate(page):
            if c == "\n":
                self.lines.append(i + 1)
        self.forms: list[_Form] = []
        self.form: _Form | None = None
        self.select: str | None = None
        self.open: _Tag | None = None  # an option or textarea being read

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.lines[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        el = _Tag(tag, attrs, start, start + len(self.get_starttag_text() or ""))
        if tag == "form":
            self.form = _Form(el)
            self.forms.append(self.form)
        elif self.form is None:
            return
        elif tag == "select":
            self.select = el.get("name")
        elif tag in ("input", "textarea", "option"):
            el.select = self.select
            self.form.elements.append(el)
            self.open = el if tag != "input" else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif self.open is not None and tag == self.open.name:
            self.open.inner = self._offset()
            self.open = None

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.open.text += data


def _is(form: _Form, action: str, pairs: set[tuple[str, str]]) -> bool:
    """Whether `form` is the one posted: a POST form, its action, and each of its hidden keys as posted
    (a page's search form may have the same action)."""
    if (form.tag.get("method") or "").lower() != "post" or place(form.tag.get("action") or "") != place(
        action
    ):
        return False
    keys = [
        (el.get("name") or "", el.get("value") or "")
        for el in form.elements
        if el.name == "input" and (el.get("type") or "").lower() == "hidden" and el.get("name") not in _OWN
    ]
    return all(key in pairs for key in keys)


def _edits(form: _Form, fields: tuple[tuple[str, str], ...]) -> list[tuple[int, int, str]]:
    pairs = set(fields)
    names = {n for n, _ in fields}
    seen: dict[str, int] = {}
    edits = [(form.tag.start, form.tag.end, form.tag.with_attr("data-restored", None))]
    for el in form.elements:
        name = el.get("name") or ""
        kind = (el.get("type") or "text").lower() if el.name == "input" else el.name
        if el.name == "option":
            if el.select in names:
                value = el.get("value")
                chosen = (el.select or "", el.text.strip() if value is None else value) in pairs
                edits.append((el.start, el.end, el.with_attr("selected", None, chosen)))
            continue
        if kind in ("checkbox", "radio") and name and all(k != "disabled" for k, _ in el.attrs):
            # Ticked as it was when posted, whether or not its name was: a box the user unticked is
            # never posted, and left as rendered it showed the stored tick again, to be saved back.
            chosen = (name, el.get("value") or "on") in pairs
            edits.append((el.start, el.end, el.with_attr("checked", None, chosen)))
            continue
        if not name or name not in names or kind in _LEFT or (kind == "hidden" and name != "loaded"):
            continue
        values = [v for n, v in fields if n == name]
        n = seen[name] = seen.get(name, -1) + 1
        if n >= len(values):
            continue
        if el.name == "textarea" and el.inner >= el.end:
            # A browser drops the first line break after <textarea>: one more keeps the value's own.
            text = html.escape(values[n], quote=False)
            edits.append((el.end, el.inner, "\n" + text if values[n].startswith("\n") else text))
        elif el.name == "input":
            edits.append((el.start, el.end, el.with_attr("value", values[n])))
    return edits


def refill(page: str, action: str, fields: tuple[tuple[str, str], ...]) -> str | None:
    """`page` with its form posted to `action` filled in with `fields` and marked, and a note saying so
    at the top of its main part; None when the page has no such form, or more than one."""
    parser = _Forms(page)
    parser.feed(page)
    parser.close()
    pairs = set(fields)
    forms = [f for f in parser.forms if _is(f, action, pairs)]
    if len(forms) != 1:
        return None
    edits = _edits(forms[0], fields)
    main = page.find("<main>")
    if main >= 0:
        edits.append((main + len("<main>"), main + len("<main>"), "\n" + RESTORED))
    for start, end, text in sorted(edits, reverse=True):
        page = page[:start] + text + page[end:]
    return page
