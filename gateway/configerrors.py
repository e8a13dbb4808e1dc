"""A config's validation errors as the admin reads them: the key named as the file writes it, a
key that moved told where it lives now, a misspelt key or table given its section's nearest one, and
an entry of a `[[smsc]]` list named by its `name` (pydantic says `smsc.1.port`, and an admin with
three links would have to count tables to find the second).

A value of the wrong kind, out of range or left out is said with its table, what the key takes and
what was given (`[[smsc]] "orange" port: give a whole number without quotes (port = 2775), not the
text "2775"`): pydantic's "Input should be a valid integer" does not say that the quotes are the
fault. No line numbers: tomllib does not keep where a key was.

Our own validators' errors, an unknown key and a key that moved are placed the same way (`[gateway]
validity_hours: must be at most 720 hours ...`), so that one listing reads alike throughout; a check
of a whole section says its table (`[smtp]: give both ...`), and one across sections names the
keys in its message.

A secret (a key marked so in its model, or named as one: gateway.configbase.is_secret) is never
repeated, nor a password in a URL: the listing goes to the terminal and, under systemd, into the
journal. A secret of the wrong kind is said by its kind and length (`give a text in quotes, not a
number of 8 digits`), and any message that would still hold one has it masked."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gateway.configbase import KeyProblem, at, is_secret, masked, quoted, secret_shape

# Keys that moved: a config still using one is told where the key lives now.
MOVED_KEYS = {
    "gateway.reply_window_days": "[replies] window_days",
    "mail.fallback_address": "[replies] fallback_address",
}


def _section_model(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model of the section holding the key at the end of `loc` (`[[smsc]]` for `smsc.1.port`)."""
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
    return model


def _field(loc: tuple[int | str, ...], root: type[BaseModel]) -> FieldInfo | None:
    """The key's field, for its default (`loc` may end in a list's item)."""
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    model = _section_model(loc, root) if loc else None
    return model.model_fields.get(str(loc[-1])) if model is not None else None


def _holds_tables(field: FieldInfo) -> bool:
    """Whether a field is written as a table of its own (`[replies]`, `[[smsc]]`) rather than a key."""
    todo: list[Any] = [field.annotation]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            return True
        todo.extend(get_args(t))
    return False


def _is_list(field: FieldInfo) -> bool:
    return get_origin(field.annotation) is list


def _near_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str | None:
    """The key of the same section a misspelt one most likely meant (`validty_hours`)."""
    model = _section_model(loc, root)
    if model is None:
        return None
    key, known = str(loc[-1]), list(model.model_fields)
    found = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    # A key written short (`fallback` for fallback_address) is too far for difflib: the only one it begins.
    begun = [name for name in known if name.startswith(f"{key}_")]
    return found[0] if found else begun[0] if len(begun) == 1 else None


def _table_name(name: str, as_list: bool) -> str:
    return f"[[{name}]]" if as_list else f"[{name}]"


def _unknown_table(loc: tuple[int | str, ...], root: type[BaseModel], given: Any) -> str:
    """An unknown table named as the file writes it, with the table it most likely meant: `[reply]`
    for `[replies]` is further from its table than a misspelt key usually is (the names are few)."""
    prefix = ".".join(str(p) for p in loc[:-1] if isinstance(p, str))
    written = _table_name(".".join(str(p) for p in loc if isinstance(p, str)), isinstance(given, list))
    model = _section_model(loc, root)
    tables = {
        name: f
        for name, f in (model.model_fields.items() if model is not None else ())
        if _holds_tables(f) and not f.exclude
    }
    found = difflib.get_close_matches(str(loc[-1]), list(tables), n=1, cutoff=0.6)
    if not found:
        return f"unknown table {written}"
    meant = _table_name(f"{prefix}.{found[0]}" if prefix else found[0], _is_list(tables[found[0]]))
    return f"unknown table {written} (did you mean {meant}?)"


def _home(key: str, root: type[BaseModel]) -> str | None:
    """The table a key written outside its own belongs to (`domains` in `[gateway]`); each, when
    several have it (`listen`: `[smtp] or [web]`). A list of tables counts as its model's
    (`window`: `[[smsc]]`): taking bare models only, a link's key under [gateway] was a bare
    "unknown key"."""
    homes = []
    for name, field in root.model_fields.items():
        todo: list[Any] = [field.annotation]
        while todo:  # the model itself, or inside list[...] / ... | None
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                if key in t.model_fields:
                    homes.append(_table_name(name, _is_list(field)))
                break
            todo.extend(get_args(t))
    return " or ".join(homes) or None


def _table(loc: tuple[int | str, ...], data: Any) -> tuple[str, tuple[int | str, ...]]:
    """The last `[[list]]` entry on the error's path as the file shows it (`[[smsc]] "orange"`,
    or `[[smsc]] #2` when it has no usable name), and the keys left below it. '' when none."""
    table, rest, path, node = "", loc, [], data
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict):
                name = node.get("name")
                label = quoted(name) if isinstance(name, str) and name.strip() else f"#{part + 1}"
                table, rest, path = f"[[{'.'.join(path)}]] {label}", loc[i + 1 :], []
                continue
        elif isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        else:
            node = None
        path.append(str(part))
    return table, rest


def _place(loc: tuple[int | str, ...], data: Any) -> tuple[str, str]:
    """The table holding the key (`[gateway]`, `[[smsc]] "orange"`) and the key below it, with
    the place of a list's item (`domains item 2`)."""
    table, rest = _table(loc, data)
    if not table:
        node, sections = data, []
        for part in loc[:-1]:
            if not (isinstance(part, str) and isinstance(node, dict) and isinstance(node.get(part), dict)):
                break
            node = node[part]
            sections.append(part)
        table, rest = (f"[{'.'.join(sections)}]" if sections else ""), loc[len(sections) :]
    words = [str(rest[0])] if rest else []
    words += [f"item {p + 1}" if isinstance(p, int) else str(p) for p in rest[1:]]
    return table, " ".join(words)


def _given(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "something else"


def _example(field: FieldInfo | None, given: Any, kind: type) -> Any:
    """A value of the right kind for the example: the one given when it reads as one, else the
    key's default; None when neither serves."""
    if kind is not str:
        try:
            number = kind is int and isinstance(given, float)  # 30.5: the whole number below it
            value = kind(given) if isinstance(given, str) else int(given) if number else None
        except (TypeError, ValueError, OverflowError):
            value = None
        if isinstance(value, kind) and not (kind is float and value != value):
            return value
    elif isinstance(given, int | float) and not isinstance(given, bool):
        return str(given)
    default = field.default if field is not None else None
    kinds = (int, float) if kind is float else kind  # a float key's default is often written 24
    return default if isinstance(default, kinds) and not isinstance(default, bool) else None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


# pydantic's error types of a value of the wrong kind: what the key takes, and the kind for an example.
_KINDS: dict[str, tuple[str, type]] = {
    "int_type": ("a whole number without quotes", int),
    "int_parsing": ("a whole number without quotes", int),
    "int_from_float": ("a whole number", int),
    "float_type": ("a number without quotes", float),
    "float_parsing": ("a number without quotes", float),
    "bool_type": ("true or false without quotes", bool),
    "bool_parsing": ("true or false without quotes", bool),
    "string_type": ("a text in quotes", str),
}


def _wrong_kind(e: Any, root: type[BaseModel], data: Any) -> str | None:
    """The message for a value of the wrong kind or a key left out, or None for pydantic's own."""
    loc: tuple[int | str, ...] = tuple(e["loc"])
    table, key = _place(loc, data)
    keys = [p for p in loc if isinstance(p, str)]
    if not keys:
        return None
    name, given, kind = keys[-1], e.get("input"), e["type"]
    where = at(table, key)
    item = isinstance(loc[-1], int)  # an item of a list: its example is the value alone
    secret = is_secret(name, _field(loc, root))
    shown = secret_shape if secret else _given  # a secret by its kind and length alone
    if kind in _KINDS:
        takes, as_kind = _KINDS[kind]
        if not isinstance(given, str):  # the quotes are not the fault
            takes = takes.removesuffix(" without quotes")
        if secret and as_kind is str and isinstance(given, int | float) and not isinstance(given, bool):
            # digits-only SMSC passwords are common, and TOML reads them as a number
            return f'{where}: give a text in quotes, not {shown(given)} (the same in quotes: {name} = "...")'
        value = True if as_kind is bool else None if secret else _example(_field(loc, root), given, as_kind)
        example = "" if value is None else f" ({_toml(value)})" if item else f" ({name} = {_toml(value)})"
        return f"{where}: give {takes}{example}, not {shown(given)}"
    dotted = ".".join(keys)  # the table's header as TOML writes it: [premium.number], not [number]
    if kind == "list_type" and isinstance(given, dict):
        each = f"(double brackets: a list, one [[{dotted}]] per entry)"
        return f"[{dotted}]: write [[{dotted}]] {each}, not [{dotted}]"
    if kind == "list_type":
        example = (
            f", {name} = [{_toml(given)}]," if isinstance(given, str | int | float) and not secret else ""
        )
        one = "a single text" if isinstance(given, str) else shown(given)
        return f"{where}: give a list{example} not {one}"
    if kind in ("model_type", "dict_type") and not item:
        if isinstance(given, list):
            return f"[{dotted}] is one table: write [{dotted}], not [[{dotted}]]"
        return f"{name}: give a table ([{name}] on a line of its own, its keys below it), not {shown(given)}"
    if kind == "missing":
        return f"{where}: required, and missing (add {name} = ...)"
    if kind in _BOUNDS and not isinstance(given, bool):
        bound = _BOUNDS[kind].format(*(_toml(v) for v in e.get("ctx", {}).values()))
        return f"{where}: give {bound}, not {shown(given)}"
    if kind == "literal_error" and "expected" in e.get("ctx", {}):
        return f"{where}: give {e['ctx']['expected'].replace(chr(39), chr(34))}, not {shown(given)}"
    if kind == "too_short" and isinstance(given, list):
        least = e.get("ctx", {}).get("min_length", 1)
        return f"{where}: give at least {least} item{'s' if least != 1 else ''}, not an empty list"
    return None


# pydantic's error types of a number out of its key's range.
_BOUNDS = {
    "greater_than": "more than {}",
    "greater_than_equal": "{} or more",
    "less_than": "less than {}",
    "less_than_equal": "{} or less",
}


def describe(err: ValidationError, root: type[BaseModel], data: Any = None) -> str:
    """pydantic's errors of a config as one line, in the config's own words: each names its place
    as the file writes it (`[gateway] validity_hours: ...`, `[[smsc]] "orange" port: ...`). `data` is
    the parsed TOML, which names the entries of lists of tables."""
    lines = []
    for e in err.errors():
        loc: tuple[int | str, ...] = tuple(e["loc"])
        dotted = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden" and dotted in MOVED_KEYS:
            lines.append(f"{at(*_place(loc, data))}: has moved: use {MOVED_KEYS[dotted]}")
        elif e["type"] == "extra_forbidden" and _is_table(e.get("input")):
            lines.append(_unknown_table(loc, root, e.get("input")))
        elif e["type"] == "extra_forbidden" and len(loc) == 1 and (home := _home(dotted, root)):
            lines.append(f"{dotted}: unknown key above the first table: it belongs under {home}")
        elif e["type"] == "extra_forbidden":
            near = _near_key(loc, root)
            table, key = _place(loc, data)
            home = None if near else _home(str(loc[-1]), root)  # `admin_address` under [gateway]
            lines.append(
                f"{at(table, key)}: unknown key"
                + (f" (did you mean {near}?)" if near else f" here: it belongs under {home}" if home else "")
            )
        elif (worded := _wrong_kind(e, root, data)) is not None:
            lines.append(worded)
        else:  # our own validators': a check across sections names its keys in its message
            error = e.get("ctx", {}).get("error")
            header = _header(loc, data)
            table, key = _place(loc, data) if header is None else (header, "")
            if isinstance(error, KeyProblem):
                key = " ".join(k for k in (key, error.keys) if k)
            msg = _unsaid(e["msg"].removeprefix("Value error, "), _secrets(_at_loc(data, loc), loc, root))
            lines.append(f"{at(table, key)}: {msg}" if table or key else msg)
    return masked("; ".join(lines))


def _at_loc(data: Any, loc: tuple[int | str, ...]) -> Any:
    """What the parsed TOML holds at an error's place: the key's value, or the table checked."""
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _secrets(node: Any, loc: tuple[int | str, ...], root: type[BaseModel]) -> set[str]:
    """The texts of the secrets in the parsed TOML below `loc`, as a message could repeat them."""
    if isinstance(node, dict):
        return {s for k, v in node.items() for s in _secrets(v, (*loc, str(k)), root)}
    if isinstance(node, list):
        return {s for i, v in enumerate(node) for s in _secrets(v, (*loc, i), root)}
    keys = [p for p in loc if isinstance(p, str)]
    if not keys or isinstance(node, bool) or not isinstance(node, str | int | float):
        return set()
    return {str(node)} if str(node).strip() and is_secret(keys[-1], _field(loc, root)) else set()


def _unsaid(text: str, secrets: set[str]) -> str:
    """A validator's message (of a key or of a whole section) with the secrets it was given masked:
    our own checks' words are not built by this module, so one might repeat its value."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


def _header(loc: tuple[int | str, ...], data: Any) -> str | None:
    """The table `loc` is, as the file writes its header (`[smtp]`, `[[premium.number]]`), or None
    for a key: a check of a whole section or list of tables says its error there."""
    node = data
    for part in loc:
        if not (isinstance(part, str) and isinstance(node, dict)):
            return None
        node = node.get(part)
    if loc and _is_table(node):
        return _table_name(".".join(map(str, loc)), isinstance(node, list))
    return None


def _is_table(value: Any) -> bool:
    """Whether TOML wrote this value as a table (`[x]`) or a list of them (`[[x]]`)."""
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )
