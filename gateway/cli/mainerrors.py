"""What `smsgw` says of arguments no option took, and of a file error no command foresaw (`main`)."""

from __future__ import annotations

import argparse
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
