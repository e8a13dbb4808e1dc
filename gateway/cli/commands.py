"""The top-level commands of `smsgw`, in groups, and each group's parsers added only when needed.

Kept out of `gateway.cli.main` (which builds the top-level parser and runs the command) because
this is the part that keeps start-up cheap: a command's parser module is imported only when that
command is given, and `--version` imports none of them (monitoring runs `smsgw status` every minute).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any


class Parser(argparse.ArgumentParser):
    """The parser of `smsgw` and, as argparse makes subcommands' parsers of their parent's class, of
    every command.

    An address may begin with a dash (`-2+3@acme.pl`, which the panel takes): argparse read it as
    an unknown option, and `smsgw user passwd -2+3@acme.pl` was refused with "the following
    arguments are required: email", leaving no way to name such a user but the `--` nobody would
    think of. No option holds an `@`, so an unknown one that does is taken as the address it is, as
    a positional argument or an option's value (`--reply-acl -2+3@acme.pl`); a known option with
    its value joined (`-c./a@b.toml`, `--email=x@y`) is still that option, and a misspelt one
    (`--acount=x@y`) is still refused as unknown, not taken for an address."""

    def _parse_optional(self, arg_string: str) -> Any:
        found = super()._parse_optional(arg_string)  # (action, ...); a list of them from 3.12
        local, at, _ = arg_string.partition("@")
        if found is None or not at or (local.startswith("--") and "=" in local):
            return found
        options = found if isinstance(found, list) else [found]
        unknown = all(option[0] is None or self._flags_refuse(option) for option in options)
        return None if unknown else found

    def _flags_refuse(self, option: tuple[Any, ...]) -> bool:
        """Whether argparse would refuse a short flag taking no value with letters joined to it.

        `-helpdesk@acme.pl` matches `-h` with "elpdesk@acme.pl" joined: argparse reads the letters
        as more flags (`-e`, `-l`, ...) until one takes a value, and refuses the argument ("ignored
        explicit argument") at the first letter that is no option. Walked here the same way, so an
        address beginning with a flag's letter is the address it is, while `-hc./a@b.toml` (help,
        then the config file) is still those two options. The joined value is the last item of the
        tuple on every version (a separator comes before it from 3.13)."""
        action, option_string, explicit = option[0], option[1], option[-1]
        if action.nargs != 0 or not explicit or option_string.startswith(2 * option_string[0]):
            return False
        for letter in explicit:
            action = self._option_string_actions.get(option_string[0] + letter)
            if action is None:
                return True
            if action.nargs != 0:
                return False
        return False


# The commands in the order `smsgw --help` lists them, in groups: the names (aliases too) each group
# adds, and the module and function adding them. A test holds the names to what the functions add.
COMMANDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("run", "check-config"), "gateway.cli.main", "add_daemon_commands"),
    (("status", "queue", "outbox", "send"), "gateway.cli.ops", "add_ops_commands"),
    (("account", "user"), "gateway.cli.admin", "add_admin_commands"),
    (("optout",), "gateway.cli.optouts", "add_optout_commands"),
    (("auth",), "gateway.cli.auth", "add_auth_commands"),
    (("audit",), "gateway.cli.audit", "add_audit_command"),
    (("mo", "conversation"), "gateway.conversations", "add_commands"),
    (("premium",), "gateway.premium", "add_commands"),
    (("phone",), "gateway.privacy", "add_commands"),
    (("install-service", "tls"), "gateway.cli.service", "add_service_commands"),
    (("billing",), "gateway.cli.billing", "add_billing_commands"),
    (("backup",), "gateway.cli.backup", "add_backup_commands"),
    (("restore",), "gateway.cli.restore", "add_restore_commands"),
    (("accept-wal-loss",), "gateway.cli.main", "add_wal_loss_command"),
    (("simulator",), "gateway.cli.simulator", "add_simulator_commands"),
)


class Commands(argparse._SubParsersAction):
    """The top-level subcommands, each group added the first time argparse looks for it.

    Their modules import the store, the SMTP side, billing and the rest: `smsgw status` adds (and
    imports) the group of `status` alone, `--version` none. Whatever needs them all (`--help`, an
    unknown command's "choose from" list, a walk over `choices`) adds the rest, in `COMMANDS` order,
    so that every listing is the one a parser built at once would give.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._added: dict[int, tuple[list[str], list[argparse.Action]]] = {}
        self._adding = False
        super().__init__(*args, **kwargs)

    # argparse sets and reads both as plain attributes; reading them adds the groups first.
    @property  # type: ignore[override]
    def choices(self) -> Mapping[str, argparse.ArgumentParser]:
        return _Added(self)

    @choices.setter
    def choices(self, _value: object) -> None:
        pass  # `_name_parser_map`, which `add_parser` fills

    @property
    def _choices_actions(self) -> list[argparse.Action]:
        if not self._adding:
            self.add_group()
        return self._help_lines

    @_choices_actions.setter
    def _choices_actions(self, value: list[argparse.Action]) -> None:
        self._help_lines = value

    def add_group(self, name: str | None = None) -> None:
        """The group adding the command `name`; every group when `name` is none or no group's."""
        wanted = [i for i, (names, _, _) in enumerate(COMMANDS) if name in names] or range(len(COMMANDS))
        for index in wanted:
            if index not in self._added:
                self._add(index)

    def _add(self, index: int) -> None:
        _, module, function = COMMANDS[index]
        add: Callable[[argparse._SubParsersAction], None] = getattr(importlib.import_module(module), function)
        names, lines = set(self._name_parser_map), len(self._help_lines)
        self._adding = True
        try:
            add(self)
        finally:
            self._adding = False
        added = [n for n in self._name_parser_map if n not in names]
        self._added[index] = (added, self._help_lines[lines:])
        for command in {id(p): p for p in (self._name_parser_map[n] for n in added)}.values():
            config_after(command)
            for nested in each_command(command):
                config_after(nested)
        order = sorted(self._added)
        parsers = {n: self._name_parser_map[n] for i in order for n in self._added[i][0]}
        self._name_parser_map.clear()
        self._name_parser_map.update(parsers)
        self._help_lines[:] = [line for i in order for line in self._added[i][1]]


class _Added(Mapping[str, argparse.ArgumentParser]):
    """`Commands.choices`: looking a name up adds its group; going through them adds them all."""

    def __init__(self, commands: Commands) -> None:
        self._commands = commands

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        self._commands.add_group(name)
        return self._commands._name_parser_map[name]

    def __iter__(self) -> Iterator[str]:
        self._commands.add_group()
        return iter(self._commands._name_parser_map)

    def __len__(self) -> int:
        self._commands.add_group()
        return len(self._commands._name_parser_map)


def each_command(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every (sub)command's parser under `parser`, once each (aliases share one parser)."""
    seen: set[int] = set()
    todo = [parser]
    while todo:
        for action in todo.pop()._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            for command in action.choices.values():
                if id(command) not in seen:
                    seen.add(id(command))
                    todo.append(command)
                    yield command


def config_after(command: argparse.ArgumentParser) -> None:
    """`--config` after the command too: the spec's own `smsgw run --config config.toml` (R-7.1) was
    refused as an unknown argument. SUPPRESS: a command that is not given it keeps the value given
    before the command (or none).

    Each command also names its own parser (`_parser`; the deepest command's wins, as argparse
    copies a subcommand's values over its parent's): `main` refuses a stray argument in the usage of
    the command it was given to, not in the top-level one."""
    # The long form only: with `-c` an SMS text or a reason starting with "-c" ("-cancelled:
    # meeting moved") was read as a config file, and the command refused.
    command.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="config file (as before the command)",
    )
    command.set_defaults(_parser=command)
