"""A config's validation errors as the admin reads them: the key named as the file writes it, a
key that moved told where it lives now, a misspelt one given its section's nearest key, and an
entry of a `[[smsc]]` list named by its `name` (pydantic says `smsc.1.port`, and an admin with
three links would have to count tables to find the second)."""

from __future__ import annotations

import difflib
import json
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

# Keys that moved: a config still using one is told where the key lives now.
MOVED_KEYS = {
    "gateway.reply_window_days": "[replies] window_days",
    "mail.fallback_address": "[replies] fallback_address",
}


def _near_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str | None:
    """The key of the same section a misspelt one most likely meant (`validty_hours`)."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return None
        todo, model = [field.annotation], None
        while todo and model is None:  # the section's model inside list[...] / ... | None
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                model = t
            todo.extend(get_args(t))
        if model is None:
            return None
    found = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.75)
    return found[0] if found else None


def _table(loc: tuple[int | str, ...], data: Any) -> tuple[str, tuple[int | str, ...]]:
    """The last `[[list]]` entry on the error's path as the file shows it (`[[smsc]] "orange"`,
    or `[[smsc]] #2` when it has no usable name), and the keys left below it. '' when none."""
    table, rest, path, node = "", loc, [], data
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict):
                name = node.get("name")
                label = json.dumps(name) if isinstance(name, str) and name.strip() else f"#{part + 1}"
                table, rest, path = f"[[{'.'.join(path)}]] {label}", loc[i + 1 :], []
                continue
        elif isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        else:
            node = None
        path.append(str(part))
    return table, rest


def describe(err: ValidationError, root: type[BaseModel], data: Any = None) -> str:
    """pydantic's errors of a config as one line, in the config's own words. `data` is the parsed
    TOML, which names the entries of lists of tables."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        table, rest = _table(e["loc"], data)
        key = ".".join(str(p) for p in rest)
        if e["type"] == "extra_forbidden" and loc in MOVED_KEYS:
            lines.append(f"key {loc!r} has moved: use {MOVED_KEYS[loc]}")
        elif e["type"] == "extra_forbidden":
            near = _near_key(e["loc"], root)
            named = f"unknown key {key!r} in {table}" if table else f"unknown key {loc!r}"
            lines.append(named + (f" (did you mean {near!r}?)" if near else ""))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if table:
                lines.append(f"{table}: {key}: {msg}" if key else f"{table}: {msg}")
            else:
                lines.append(f"{loc}: {msg}" if loc else msg)  # checks across sections name their keys
    return "; ".join(lines)
