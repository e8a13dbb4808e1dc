"""Which `[[account]]` blocks the start does not make an account of, and why.

Three rules came after blocks were written under the older ones: an account name holding a character
that shows as nothing or as a space (`gateway.printalike`), a user whose domain has no dot
(`gateway.cli.addressdoubts`), an IPv4-compatible relay network (`gateway.relaynets`). The config
refused them (exit 3), so a site upgraded with such a block could not start at all, though a block
only creates a missing account (`gateway.adminrules.seed_accounts`): for one stored already it
changes nothing, and the refusal's advice ("give a plain name") mended nothing stored. The config
takes them again; a missing account is not made so, as `account add` and `user add` would not make
it: the start logs why (`account.not_seeded`), check-config says it first (`gateway.cli.seedwords`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway import relaynets
from gateway.adminrules import account_name_problem
from gateway.cli.addressdoubts import one_label_problem
from gateway.configbase import ConfigError
from gateway.printalike import account_name_clash, printed_alike

if TYPE_CHECKING:
    from gateway.config import SeedAccount


def seed_refusal(seed: SeedAccount, stored: Iterable[str]) -> str | None:
    """Why the start does not create `seed`'s account, missing beside the accounts `stored`, or None:
    what `account add` and `user add` refuse of it, with what to write instead. The config checked the
    rest, so only the rules the config leaves to this are left to find."""
    stored = list(stored)
    if (problem := account_name_problem(seed.name)) is not None:
        return f"{problem} in the block"
    if (other := printed_alike(stored, seed.name)) is not None:
        clash = account_name_clash(stored, seed.name)
        stored_as = f"write its name as stored: name = {toml_string(other)}"
        return f"{clash}; or, if the block means that account, {stored_as}"
    for user in seed.users:
        if (problem := one_label_problem(user)) is not None:
            return f"users: {problem}"
    for cidr in seed.relay_networks:
        try:
            relaynets.network(cidr)
        except ConfigError as exc:
            return f"relay_networks: {exc}"
    return None


def toml_string(text: str) -> str:
    """`text` as a TOML basic string an admin can type: what does not print, as its \\u escape (an
    editor shows a no-break space as a space, and the name typed so is another name)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
    return '"' + "".join(out) + '"'
