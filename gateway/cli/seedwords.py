"""What check-config says of `[[account]]` blocks that the rules made since they were written would
refuse (`gateway.accountseed`): the start that comes does not stop over them, but it does not create a
missing account so, and logs that at ERROR (`account.not_seeded`) where nobody reading check-config
looked. A block "Best Sp" beside a stored "Best\\u00a0Sp" was said nowhere but there, at each start.
Read-only, as `gateway.cli.stored`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.stored import read_rows

if TYPE_CHECKING:
    from gateway.config import Config, SeedAccount


def seed_refusals(cfg: Config) -> tuple[list[str], list[str]]:
    """(warnings, notes): a block whose missing account the start will not create, with why and what
    to write; a block whose stored account a new one could not be made as, which it leaves as it is."""
    from gateway.accountseed import toml_string

    warnings, notes = [], []
    for seed, problem, stored in _judged(cfg):
        block = f"[[account]] {toml_string(seed.name)}"  # "Best\u00A0Sp", which an editor shows as "Best Sp"
        if problem is None:
            continue
        if stored:
            notes.append(
                f"{block} names account {seed.name!r}, stored already: the block creates nothing and the"
                f" account is kept as it is, though a new account could not be made so ({problem})"
            )
        else:
            warnings.append(f"{block}: the start does not create account {seed.name!r}: {problem}")
    return warnings, notes


def unseeded(cfg: Config) -> set[str]:
    """The names of the blocks whose missing account the start will not create."""
    return {seed.name for seed, problem, stored in _judged(cfg) if problem is not None and not stored}


def _judged(cfg: Config) -> list[tuple[SeedAccount, str | None, bool]]:
    """(block, what a new account could not be made with, whether its account is stored), read in
    order as the start seeds them: a block printed as an earlier one's name is refused beside it."""
    from gateway.accountseed import seed_refusal

    if not cfg.account:
        return []
    stored = {name for (name,) in read_rows(cfg.db_path, "SELECT name FROM accounts")}
    names = list(stored)
    judged = []
    for seed in cfg.account:
        if seed.name in stored:
            judged.append((seed, seed_refusal(seed, ()), True))
            continue
        problem = seed_refusal(seed, names)
        judged.append((seed, problem, False))
        if problem is None:
            names.append(seed.name)
    return judged
