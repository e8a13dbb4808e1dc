"""A settings form remembers what it showed, so that a save writes only what its user changed.

The account page wrote every field back: a tab loaded before another save (a second tab, the admin
and the operator on one account) undid that save with "account updated": billing addresses, quiet
hours, the operator's monthly limit. The form now carries a stamp, a digest of each field as it was
shown. A field submitted as it was shown was not changed by this form and is not written; a field
this form changed that someone else changed meanwhile (to something else) is a conflict: the save is
refused and its user decides, seeing both.

Digests rather than the values: the form stays as large as it was (the request body is capped), and
nothing in the stamp needs trusting: an edited stamp can only make its sender's own save write more
or less of what they sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.web.pages import Invalid

STAMP = "loaded"  # the hidden field's name

# The form's fields as the audit and the error name them.
LABELS = {
    "sender": "sender",
    "split_mode": "split mode",
    "transliterate": "transliterate",
    "end_marker": "end marker",
    "cut_from": "cut the text from",
    "quiet_hours": "quiet hours",
    "dlr_mail": "delivery report mail",
    "overflow": "text over the part limit",
    "confirm": "confirmation mail",
    "bulk": "all mail bulk",
    "auto_generated": "alerts from monitoring systems",
    "monthly_limit": "monthly limit",
    "daily_limit": "daily limit",
    "countries": "countries",
    "billing_to": "billing file mailed to",
    "notify_address": "bounces and notices to",
    "inbound_address": "SMS to the account's number",
}


def normal(name: str, value: Any) -> str:
    """A field's value as compared: what the browser adds (CR LF in a textarea, spaces) and what the
    settings' own rules ignore (order and case of addresses and countries) is no change."""
    if isinstance(value, bool):
        return "on" if value else ""
    text = str(value)
    if name == "cut_from":
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
    if name in ("billing_to", "countries"):
        return " ".join(sorted({w.lower() for w in text.replace(",", " ").split()}))
    if name == "quiet_hours":
        text = "".join(text.split()).lower()
        return "" if text in ("none", "off") else text
    return text.strip()


def digest(name: str, value: Any) -> str:
    return hashlib.sha256(f"{name}\0{normal(name, value)}".encode()).hexdigest()[:16]


def stamp(shown: Mapping[str, Any], names: Iterable[str]) -> str:
    """The stamp of a form showing `shown`: one digest for each of its fields `names`."""
    return json.dumps({n: digest(n, shown[n]) for n in names}, separators=(",", ":"), sort_keys=True)


def read_stamp(raw: str) -> dict[str, str]:
    """The submitted stamp; empty (a page from before the stamp) is none, every field then counted as
    changed by the form, as it was before."""
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise Invalid("the form was damaged on its way: reload the page and make the change again")
    return loaded


@dataclass
class Edit:
    """What one submitted form does to the settings as they are now."""

    touched: set[str] = field(default_factory=set)  # fields this form changed
    meanwhile: list[str] = field(default_factory=list)  # of those, changed elsewhere since it was loaded


def compare(
    loaded: Mapping[str, str], typed: Mapping[str, Any], current: Mapping[str, Any], names: Iterable[str]
) -> Edit:
    """Each field of the form: changed by it (typed differs from what it showed), and if so, also
    changed by someone else since (now differs from what it showed, and from what was typed: two
    people making the same change do not conflict)."""
    edit = Edit()
    for n in names:
        was = loaded.get(n)
        if was is not None and digest(n, typed[n]) == was:
            continue
        edit.touched.add(n)
        if was is not None and digest(n, current[n]) != was and normal(n, typed[n]) != normal(n, current[n]):
            edit.meanwhile.append(n)
    return edit


def merged(typed: Mapping[str, Any], current: Mapping[str, Any], touched: set[str]) -> dict[str, Any]:
    """The form shown after a conflict: the user's input where they changed a field, the settings as
    they are now elsewhere, so that saving it again undoes nobody's change but the ones it shows."""
    return {n: (typed[n] if n in touched else current[n]) for n in current}


def said(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return " | ".join(str(value).splitlines()) or "(empty)"


def conflict_message(meanwhile: list[str], current: Mapping[str, Any]) -> str:
    fields = "; ".join(f"{LABELS[n]} (now: {said(current[n])})" for n in meanwhile)
    return (
        f"not saved: changed by someone else since this page was loaded: {fields}. Your input is kept"
        " below; save again to replace those settings with it, or reload the page to start from the"
        " current settings"
    )
