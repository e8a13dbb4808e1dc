"""What `check-config` reads of the database: account settings stored under older rules, or typed
in without the config's knowledge (a relay network of the whole internet), that the config check
cannot see. Read-only: check-config may
run beside the daemon and never migrates or writes."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway import statelock
from gateway.premium import numbersgone, queries

if TYPE_CHECKING:
    from gateway.config import Config, SeedAccount

T = TypeVar("T")


def read_rows(db_path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of a read-only query; none when there is no database or it cannot be read (an
    unreadable or not yet migrated one is `run`'s to report, with its exit status)."""
    return read_by(db_path, lambda conn: conn.execute(query, params).fetchall())


def read_by(db_path: Path, read: Callable[[sqlite3.Connection], list[T]]) -> list[T]:
    """What `read` returns of a read-only connection to the database (a feature's own query, as
    `gateway.premium.queries`), as `read_rows` reads: nothing when it cannot be read."""
    from gateway.filemodes import refuse_unsafe_database

    if not db_path.exists():
        return []
    try:
        refuse_unsafe_database(db_path)  # a link or another user's file is never read: the start names it
        statelock.use_database(db_path.parent)  # held until the command ends (`smsgw restore`)
    except (OSError, statelock.DatabaseBeingRestored):  # OSError: UnsafeFile among them
        return []
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2) as conn:
            return read(conn)
    except sqlite3.Error:
        return []


def stored_sender_problems(db_path: Path) -> list[tuple[str, str]]:
    """(account, why) for senders stored before today's sender rule that no SMSC sends alike.

    The rule is checked where a sender is set, so an account set under an older, looser rule (a €
    or an accented letter) keeps it, and each of its SMS fails at submit. Read-only: check-config
    may run beside the daemon and never migrates or writes.
    """
    from gateway.senderrules import sender_problem

    rows = read_rows(db_path, "SELECT name, sender FROM accounts WHERE sender IS NOT NULL")
    return [(name, why) for name, sender in rows if (why := sender_problem(sender)) is not None]


def stored_address_loops(cfg: Config) -> list[tuple[str, str, str, str]]:
    """(account, option, address, why) for stored billing and notice addresses that reach the gateway.

    They are the database's, not the config's, so they are warned of rather than refused (as
    `mail.admin_address` is): the billing file or the bounce notice mailed there comes back to the
    gateway's relay port and is refused, read by nobody. Read-only, as `stored_sender_problems`."""
    from gateway.configloops import loop_reason

    query = (
        "SELECT a.name, '--billing-to', b.address FROM account_billing_to b JOIN accounts a"
        " ON a.id = b.account_id UNION ALL SELECT name, '--notify-address', notify_address FROM accounts"
        " WHERE notify_address IS NOT NULL ORDER BY 1, 2, 3"
    )
    rows = read_rows(cfg.db_path, query)
    return [(n, opt, addr, why) for n, opt, addr in rows if (why := loop_reason(cfg, addr)) is not None]


def stored_premium_loops(cfg: Config) -> list[tuple[str, str, str, str]]:
    """(service, option, address, why) for premium services whose address or reply list is on the
    gateway's domains, stored before `premium add/set` refused them: the confirmation mailed there
    comes back to the gateway and is refused, so the service never confirms and its SMS are kept."""
    from gateway.configloops import loop_reason

    rows = read_by(cfg.db_path, queries.service_addresses)
    return [(p, opt, addr, why) for p, opt, addr in rows if (why := loop_reason(cfg, addr)) is not None]


def stored_premium_unconfigured(cfg: Config) -> list[str]:
    """A line for each premium service bound to numbers `[premium]` no longer has, with the command
    that mends it. A tariff renumbered in the config (7355 -> 7356) left such a service running on
    the old number alone, and every vote to the new one went to the fallback address, check-config
    and the start silent; `premium list` marks them too."""
    configured = list(cfg.premium.tariffs)
    lines = []
    for password, numbers in sorted(read_by(cfg.db_path, queries.bound_numbers)):
        bound = numbers.split()
        if not (gone := numbersgone.gone(bound, configured)):
            continue
        fix = (
            f"`smsgw premium set {password} --number …` (configured: {', '.join(configured)}) or"
            f" `--all-numbers`, or put {' '.join(gone)} back in [premium] numbers"
            if configured
            else f"put {' '.join(gone)} back in [premium] numbers"
        )
        lines.append(
            f"premium service {password}: number{'s' if len(gone) > 1 else ''} {' '.join(gone)}"
            f" {'are' if len(gone) > 1 else 'is'} no longer configured in [premium]"
            f" ({numbersgone.still_runs(bound, configured)}): {fix}"
        )
    return lines


def stored_wide_networks(cfg: Config) -> list[tuple[str, str, str]]:
    """(account, network, why) for relay networks stored too wide to trust (`configdoubts`)."""
    from gateway.relaynets import wide_network_doubt

    query = (
        "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id ORDER BY 1, 2"
    )
    rows = read_rows(cfg.db_path, query)
    return [(name, cidr, why) for name, cidr in rows if (why := wide_network_doubt(cidr)) is not None]


def unapplied_seeds(cfg: Config) -> list[str]:
    """What an `[[account]]` block names that its account, which exists, lacks: the block only
    creates a missing account (`adminrules.seed_accounts`), so a user or network added to it later
    was ignored without a word and the user's mail refused with 550. Each with the command that
    applies it; one taken out on purpose stays said until it leaves the block too. A block whose
    account the next start creates (a block renamed makes a new account) is read as that start will
    leave it: a user another account holds stays there, which the start said only at the one after."""
    from gateway.cli.seedwords import unseeded
    from gateway.configbase import quoted

    refused = unseeded(cfg)  # no account is made of these: said by `seed_refusals`, not as made
    seeds = {seed.name: seed for seed in cfg.account if seed.name not in refused}
    if not seeds:
        return []
    accounts = {name for (name,) in read_rows(cfg.db_path, "SELECT name FROM accounts")}
    users = read_rows(
        cfg.db_path, "SELECT u.email, a.name FROM users u JOIN accounts a ON a.id = u.account_id"
    )
    owner = {email.casefold(): name for email, name in users}
    nets = read_rows(
        cfg.db_path, "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id"
    )
    trusted = {(name, _net(cidr)) for name, cidr in nets}
    senders = dict(read_rows(cfg.db_path, "SELECT name, sender FROM accounts"))
    lines = []
    for name in [n for n in seeds if n not in accounts]:  # made with the users no account holds, in order
        for email in seeds[name].users:
            owner.setdefault(email.casefold(), name)
    for name in sorted(seeds):
        block = f"[[account]] {quoted(name)} names"
        new = name not in accounts
        for email in seeds[name].users:
            held = owner.get(email.casefold())
            if held == name:
                continue
            if new:
                lines.append(
                    f"{block} user {email}, but it is account {held}'s and stays so when the start creates"
                    f" account {name} (a renamed block makes a new account; the old one keeps its users and"
                    f" networks): `smsgw user remove {email}` and `smsgw user add {email} --account {name!r}`"
                    " once it exists, or take it out of the block"
                )
                continue
            where = f"it is account {held}'s" if held else "the account does not have it"
            apply = f"`smsgw user remove {email}` and " if held else ""
            lines.append(
                f"{block} user {email}, but {where} (the block only creates a missing account):"
                f" {apply}`smsgw user add {email} --account {name!r}`, or take it out of the block"
            )
        if new:
            continue
        for cidr in seeds[name].relay_networks:
            if (name, _net(cidr)) not in trusted:
                lines.append(
                    f"{block} network {cidr}, but the account does not trust it (the block only creates"
                    f" a missing account): `smsgw account set {name!r} --add-network {cidr}`, or take it"
                    " out of the block"
                )
        lines += _kept_beyond_block(cfg, seeds[name], nets, senders.get(name))
    return lines


def _kept_beyond_block(
    cfg: Config, seed: SeedAccount, nets: list[tuple[Any, ...]], sender: str | None
) -> list[str]:
    """What the account keeps that its block no longer says: a network taken out of the block (to
    lock a mail host out) went on relaying with 250, and a sender changed there changed nothing."""
    from gateway.cli.poolsender import UNUSED, pool_sends
    from gateway.configbase import quoted

    block = f"[[account]] {quoted(seed.name)}"
    named = {_net(cidr) for cidr in seed.relay_networks}
    lines = [
        f"{block} does not name network {cidr}, which the account still trusts (the block only creates"
        f" a missing account): `smsgw account set {seed.name!r} --remove-network {cidr}` stops it, or name"
        " it in the block"
        for account, cidr in nets
        if account == seed.name and _net(cidr) not in named
    ]
    if (seed.sender or None) != (sender or None):
        now = f"sends from {sender}" if sender else f"has no sender of its own ({cfg.gateway.default_sender})"
        if pool_sends(cfg, sender):  # the pool's numbers stand in for a number sender
            now = f"has sender {sender}" if sender else now
            now += f", {UNUSED}"
        set_it = f"--sender {seed.sender}" if seed.sender else "--sender ''"
        lines.append(
            f"{block} names sender {seed.sender or '(none)'}, but the account {now} (the block only creates"
            f" a missing account): `smsgw account set {seed.name!r} {set_it}`, or change the block"
        )
    return lines


def shared_senders(cfg: Config) -> dict[str, list[str]]:
    """Our number -> the accounts that send from it, where two or more do and there is no reply pool.

    R-3.2: without a pool the most recent sender wins, so a phone's answer goes to whichever user
    texted it last, of whichever account: another company's customer's reply in this company's
    mailbox. Accounts without a sender of their own share `[gateway] default_sender`, the
    walkthrough's demo account among them, and nothing said so."""
    return senders_shared(cfg, read_rows(cfg.db_path, "SELECT name, sender FROM accounts ORDER BY name"))


def senders_shared(cfg: Config, accounts: Iterable[tuple[str, str | None]]) -> dict[str, list[str]]:
    """`shared_senders` of (name, stored sender) pairs: the panel has them from its own connection."""
    from gateway.configbase import is_number_sender
    from gateway.conversations.numbers import digit_forms

    if cfg.replies.pool:
        return {}
    # One number however it is written ("+48100200300", "48100200300", "100200300"): an answer is
    # matched to our number by its digits, so those accounts share it too, and worse: the answer goes
    # to the form the SMSC wrote, whoever texted last.
    groups: list[tuple[set[str], list[str], list[str]]] = []  # (digit forms, as written, accounts)
    for name, sender in accounts:
        number = (sender or cfg.gateway.default_sender).replace(" ", "")
        if not is_number_sender(number):
            continue
        forms = set(digit_forms(number, cfg.gateway.default_region)) or {number}
        joined = [g for g in groups if g[0] & forms]
        written = [w for g in joined for w in g[1]]
        merged = (
            forms.union(*(g[0] for g in joined)),
            written + ([number] if number not in written else []),
            [n for g in joined for n in g[2]] + [name],
        )
        groups = [g for g in groups if g not in joined] + [merged]
    return {" or ".join(written): sorted(names) for _, written, names in groups if len(names) > 1}


def shared_sender_line(number: str, names: list[str]) -> str:
    return (
        f"accounts {', '.join(names)} all send from {number} and [replies] pool is empty: a phone's"
        " answer goes to whoever texted it last, of any of these accounts; give each its own"
        " `smsgw account set NAME --sender …`, or set [replies] pool"
    )


def say_shared_senders(cfg: Config, name: str) -> None:
    """The note `account add` and `account set --sender` print when account `name` now shares its
    number with another account, as check-config warns of it."""
    for number, names in shared_senders(cfg).items():
        if name in names:
            print(f"note: {shared_sender_line(number, names)}")


def stored_overlaps(cfg: Config) -> list[str]:
    """Relay networks of two accounts that share addresses, stored before `account add` and `set`
    refused them (or by the panel or a config seed): each names both and what the relay does. With
    those the next start will seed from `[[account]]` (all of them with no database yet): check-config
    before it, and the start itself (which warns before it seeds), said nothing of two blocks listing
    one network."""
    from gateway.relaynets import overlap_words, overlaps

    query = "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id"
    rows = read_rows(cfg.db_path, query)
    # And the networks of the accounts the start will seed: a block renamed makes a second account
    # on the old one's network, which the start said only at the one after.
    accounts = {name for (name,) in read_rows(cfg.db_path, "SELECT name FROM accounts")}
    rows += [
        (seed.name, cidr) for seed in cfg.account if seed.name not in accounts for cidr in seed.relay_networks
    ]
    return [
        f"accounts {name} ({cidr}) and {other} ({other_cidr}) share relay network addresses, where the"
        f" relay port asks no password: {overlap_words(name, cidr, other, other_cidr)}; else give each"
        " account networks of its own (`smsgw account set NAME --remove-network CIDR`)"
        for name, cidr, other, other_cidr in overlaps(rows)
    ]


def stored_premium_senders(cfg: Config) -> list[str]:
    """Stored accounts sending from a premium number (`gateway.premium.senders`), imported when asked:
    it reads numbers as the numbering plan does, which the other commands importing this never need."""
    from gateway.premium.senders import stored_premium_senders as lines

    return lines(cfg)


def stored_sender_prefix(cfg: Config) -> list[str]:
    """Stored accounts (apart from their blocks, which the config's doubts name) sending from a number
    a CIMD2 link's `sender_prefix` cannot carry (`gateway.linkdoubts`); no read without such a link."""
    from gateway.accountsenders import merged
    from gateway.linkdoubts import sender_prefix_doubts

    if not any(link.type == "cimd2" and link.sender_prefix for link in cfg.smsc):
        return []
    rows = read_rows(cfg.db_path, "SELECT name, sender FROM accounts ORDER BY name")
    accounts = merged(cfg, {name: sender or None for name, sender in rows})
    return sender_prefix_doubts(cfg, [(w, s) for w, s in accounts if w.startswith("stored account ")])


def start_warnings(cfg: Config) -> list[tuple[str, str]]:
    """(event, line) for what `smsgw run` logs of the database at its start, as check-config warns of
    it: an admin upgrading to 0.2.19 restarts and reads the start, not check-config, and a company
    whose wide network holds another's narrower one lost relay from there with no word of it."""
    from gateway.cli.droppeddomains import dropped_domains

    return (
        [("config.account_not_applied", line) for line in unapplied_seeds(cfg)]
        + [("config.relay_networks_shared", line) for line in stored_overlaps(cfg)]
        + [("config.premium_number_gone", line) for line in stored_premium_unconfigured(cfg)]
        + [("config.sender_premium", line) for line in stored_premium_senders(cfg)]
        + [("config.domain_dropped", line) for line in dropped_domains(cfg)]
        + [("config.sender_outside_prefix", line) for line in stored_sender_prefix(cfg)]
    )


def _net(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr.strip(), strict=False))
    except ValueError:
        return cidr


def check_wal_first(cfg: Config) -> None:
    """Before check-config reads the database: exit 3, as `smsgw run` and `status`, when a run did not
    close it cleanly and its WAL lost committed frames (no process has it open then).

    SQLite's recovery at a read-only open rewrites the -shm to match the WAL as it is: a WAL cut
    short then looked whole to the next start, which checkpointed what was left and sent SMS already
    delivered again. A WAL found whole is read as any: a CLI command that wrote leaves the flag of a
    run that committed as a crash does, and check-config saying after every `account add` that the
    database was not read would be a false alarm."""
    from gateway.cli.backup import refuse_lost_wal
    from gateway.filemodes import refuse_unsafe_database

    db = cfg.db_path
    try:
        if not db.exists():
            return
        refuse_unsafe_database(db)  # a link or another user's file: `read_rows` reads nothing either
        statelock.use_database(db.parent)  # held until the command ends (`smsgw restore`)
    except (OSError, statelock.DatabaseBeingRestored):
        return
    refuse_lost_wal(db)


def stored_warnings(cfg: Config) -> list[str]:
    """What `check-config` warns of in the database, each with the command that mends it."""
    from gateway.cli.droppeddomains import dropped_domains
    from gateway.linkprotocol import stored_changes

    check_wal_first(cfg)
    lines = [
        # A € or a Greek letter fails every SMS at submit; a number typed with spaces goes out as a
        # name phones cannot answer: both until the sender is set anew.
        f"account {name}: {problem}; its SMS fail or cannot be answered until"
        f" `smsgw account set {name!r} --sender …`"
        for name, problem in stored_sender_problems(cfg.db_path)
    ]
    lines += stored_premium_senders(cfg)  # staff SMS from a premium number: each answer a paid SMS lost
    lines += stored_sender_prefix(cfg)  # phones would see a CIMD2 interface's number, answer it in vain
    lines += [
        f'account {name}: {option} "{address}" would loop: {why}, so mail to it comes back to the'
        f" gateway; give a mailbox elsewhere: `smsgw account set {name!r} {option} …`"
        for name, option, address, why in stored_address_loops(cfg)
    ]
    lines += [
        f'premium service {password}: {option} "{address}" would loop: {why}, so it never confirms and'
        f" its SMS are kept; give a mailbox elsewhere: `smsgw premium set {password} {option} …`"
        for password, option, address, why in stored_premium_loops(cfg)
    ]
    lines += stored_premium_unconfigured(cfg)
    lines += [
        f"account {name}: {why}: `smsgw account set {name!r} --remove-network {cidr}`"
        for name, cidr, why in stored_wide_networks(cfg)
    ]
    lines += stored_overlaps(cfg)
    lines += [shared_sender_line(number, names) for number, names in shared_senders(cfg).items()]
    lines += stored_changes(cfg)  # an [[smsc]] block of another protocol under its old name
    from gateway.cli.seedwords import seed_refusals  # a block whose account the start will not make

    return lines + seed_refusals(cfg)[0] + unapplied_seeds(cfg) + dropped_domains(cfg)
