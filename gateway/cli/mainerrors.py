"""What `smsgw` says of arguments no option took, and of a file error no command foresaw (`main`)."""

from __future__ import annotations

import argparse
import difflib
import shlex


def stray_arguments(parser: argparse.ArgumentParser, argv: list[str], extras: list[str]) -> str:
    """The error for arguments no option or place took, with the likely cause when it is one of two:
    `-c FILE` after the command (only `--config` is read there), or a value with spaces unquoted
    (`--sender +48 500 100 200` gave `--sender` "+48" and left the rest over)."""
    lines = [f"unrecognized arguments: {' '.join(extras)}"]
    command = parser.prog.removeprefix("smsgw").strip() or "COMMAND"
    if any(x == "-c" or (x.startswith("-c") and not x.startswith("--")) for x in extras):
        lines.append(
            f"-c goes before the command: smsgw -c FILE {command} (after it, spell it --config FILE)"
        )
    start = next(
        (i for i in range(len(argv) - len(extras), -1, -1) if argv[i : i + len(extras)] == extras), None
    )
    if start is not None and start >= 2 and not any(x.startswith("-") for x in extras):
        option, value = argv[start - 2], argv[start - 1]
        action = parser._option_string_actions.get(option)
        takes_value = action is not None and action.nargs != 0  # `--wait` takes none: no quotes help
        if takes_value and "=" not in option and not value.startswith("-"):
            quoted = shlex.quote(" ".join([value, *extras]))
            lines.append(f"a value with spaces goes in quotes: {option} {quoted}")
    return "\n".join(lines)


def file_error(exc: OSError) -> str:
    """One line for a file error that reached `main`: the file(s) and the reason, as `cp` says it.

    A command says what it expects to meet (a backup's directory that is not writable); this is the
    last resort for the rest, which printed a traceback naming neither clearly."""
    names = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    why = exc.strerror or str(exc)
    return f"{names}: {why}" if names else why


def unknown_option(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The error for an option before the command that `smsgw` does not know, or None.

    argparse leaves an unknown option over and takes the word after it for the command:
    `smsgw --confg FILE status` said "invalid choice: 'FILE'", nothing of the misspelt option. A
    known option's value is passed over, joined or not, as is an abbreviation argparse would take."""
    known = parser._option_string_actions
    longs = [option for option in known if option.startswith("--")]
    words = iter(argv)
    for word in words:
        if word == "--" or word == "-" or not word.startswith("-"):
            return None  # the command: what follows is its own
        name, joined = word.partition("=")[0], "=" in word
        if not name.startswith("--") and name not in known and name[:2] in known:
            name, joined = name[:2], True  # `-cFILE`
        prefixed = [option for option in longs if option.startswith(name)] if name[:2] == "--" else []
        found = [name] if name in known else prefixed
        if len(found) > 1:
            return None  # ambiguous: argparse says so itself
        if not found:
            return f"unrecognized option {name}" + _likely(parser, name, word, list(words))
        if known[found[0]].nargs != 0 and not joined:
            next(words, None)  # its value
    return None


# How like a main option an unknown one must be to be offered, its dashes left out: with them, every
# pair of long options shares two characters, and `--json` (the status command's) was "did you mean
# --version?".
_CUTOFF = 0.7


def _likely(parser: argparse.ArgumentParser, name: str, word: str, rest: list[str]) -> str:
    """What the unknown option `name` (given as `word`, before `rest`) likely is: the named command's
    own option written before the command (`smsgw --json status`, which `smsgw` does not take and
    said was "--version"), else a main option spelt much like it, else nothing."""
    if (command := _command_named(parser, rest)) is not None:
        path, sub = command
        known = sub._option_string_actions
        found = [name] if name in known else [o for o in known if name[:2] == "--" and o.startswith(name)]
        if len(found) == 1:
            said = [found[0] + word[len(name) :]]  # in full: `--js` is `--json` there, not here
            takes_value = known[found[0]].nargs != 0 and "=" not in word
            if takes_value and rest and not rest[0].startswith("-") and rest[0] != path[0]:
                said.append(shlex.quote(rest[0]))
            line = shlex.join(["smsgw", *path]) + " " + " ".join(said)
            return f"\n{name} goes after the command: {line}"
    if not name.startswith("--"):
        return ""
    bare = {option[2:]: option for option in parser._option_string_actions if option.startswith("--")}
    close = difflib.get_close_matches(name[2:], list(bare), n=1, cutoff=_CUTOFF)
    return f" (did you mean {bare[close[0]]}?)" if close else ""


def _command_named(
    parser: argparse.ArgumentParser, rest: list[str]
) -> tuple[list[str], argparse.ArgumentParser] | None:
    """The command named in `rest` (the first word that is one, a `queue list` in full) and the parser
    of its options, or None."""
    path: list[str] = []
    for word in rest:
        commands = _commands(parser)
        if word in commands:
            path.append(word)
            parser = commands[word]
        elif path:
            break  # past the command: its own arguments
    return (path, parser) if path else None


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands `parser` takes by name (none where it takes no command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
