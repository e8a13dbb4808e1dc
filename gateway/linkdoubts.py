"""What `check-config` warns of and `run` logs at start about what a link does with the numbers the
config gives it: an exclusive link's numbers shared with a link not exclusive (its prefix, or a longer
one under it), and the senders a CIMD2 link's `sender_prefix` cannot carry.

A CIMD2 sender is a sub-address the SMSC appends to its interface's number (`sender_prefix`,
protocols.md 1.5): a sender outside that number cannot be written at all, and the SMSC sends the SMS
from the interface's own number (`smsc.cimd2.messages.sub_address`). The phone then answers that
number, which no conversation was opened from: the answer went to `[replies] fallback_address` (or
was kept unmatched), never to the user, and each SMS by the link broke two-way SMS. check-config said
"Config OK" and the run said it only once an SMS went, in a `cimd2.sender_outside_prefix` line.
Premium short codes are `gateway.premium.shortcode`'s; these are the numbers accounts send from.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import Config
from gateway.configbase import is_number_sender, link_place, quoted
from gateway.configfeatures import expand_pool
from gateway.configlinks import receipt_siblings
from smsc.cimd2.messages import NEVER, carries
from smsc.settings import SHORT_CODE_DIGITS

SHOWN = 5  # senders named in one warning before "and N more"


def shared_exclusive_doubts(cfg: Config) -> list[str]:
    """A link not exclusive listing a prefix an exclusive link lists, or a longer one under it: every
    link listing that prefix takes its numbers, and the longer prefix's link is tried first
    (`gateway.routing.Router`), so the exclusive link shares them with it, which the admin who made it
    exclusive may not have meant; nothing said so. Another bind of the exclusive link's SMSC account
    (`receipt_siblings`) listing the prefix, or one under it, is that operator's all the same: not said."""
    owners: dict[str, list[str]] = {}
    for link in cfg.smsc:
        if link.exclusive:
            for prefix in link.prefixes:
                owners.setdefault(prefix, []).append(link.name)
    siblings = receipt_siblings(cfg.smsc)
    doubts = []
    for link in cfg.smsc:
        if link.exclusive:
            continue
        theirs = siblings.get(link.name, ())
        for prefix in link.prefixes:
            if same := [name for name in owners.get(prefix, ()) if name not in theirs]:
                doubts.append(
                    f"{link_place(link.name, 'prefixes')}: {quoted(prefix)} is also the exclusive"
                    f" {', '.join(f'link {quoted(name)}' for name in same)}'s prefix: its numbers"
                    f" leave by either link ({quoted(link.name)} is not exclusive); make it exclusive too, or"
                    " take the prefix out"
                )
                continue
            under = [
                (shorter, name)
                for shorter, names in owners.items()
                if prefix.startswith(shorter)
                for name in names
                if name not in theirs
            ]
            for shorter, name in under:
                doubts.append(
                    f"{link_place(link.name, 'prefixes')}: {quoted(prefix)} lies under the exclusive link"
                    f" {quoted(name)}'s {quoted(shorter)}: numbers starting {prefix} leave by"
                    f" {quoted(link.name)} first (the longer prefix), then by {quoted(name)}; take the prefix"
                    f" out if they are {quoted(name)}'s alone, or make {quoted(link.name)} exclusive to send"
                    " them by it alone"
                )
    return doubts


def _senders(cfg: Config) -> list[tuple[str, list[str]]]:
    """(where the config gives it, its numbers) for each source of a number sender SMS go out from.

    With a pool every number sender yields to it (`gateway.cli.poolsender`): its entries are what
    phones see. Without one, the default sender and each `[[account]]` block's number sender."""
    if cfg.replies.pool:
        return [
            (f"[replies] pool {quoted(entry)}", list(expand_pool((entry,)))) for entry in cfg.replies.pool
        ]
    found = [("[gateway] default_sender", [cfg.gateway.default_sender])]
    found += [
        (f"[[account]] {quoted(seed.name)} sender", [seed.sender])
        for seed in cfg.account
        if seed.sender and is_number_sender(seed.sender)
    ]
    return [(where, numbers) for where, numbers in found if all(is_number_sender(n) for n in numbers)]


def _stored(cfg: Config, accounts: Sequence[tuple[str, str | None]]) -> list[tuple[str, list[str]]]:
    """The number senders of stored accounts (who, sender): the pool stands in for them, if set."""
    if cfg.replies.pool:
        return []
    return [(f"{who}'s sender {s}", [s]) for who, s in accounts if s and is_number_sender(s)]


def sender_prefix_doubts(cfg: Config, stored: Sequence[tuple[str, str | None]] | None = None) -> list[str]:
    """One warning a CIMD2 link with a `sender_prefix` that some number SMS go out from is outside:
    which numbers, what the phones see instead, and where their answers go. Of the config's numbers,
    or with `stored`, of those accounts' senders alone (`gateway.cli.stored`: the database's)."""
    sources = _senders(cfg) if stored is None else _stored(cfg, stored)
    doubts = []
    for link in cfg.smsc:
        prefix = link.sender_prefix
        if link.type != "cimd2" or prefix is None:
            continue
        lost = [where for where, numbers in sources if any(not carries(n, prefix) for n in numbers)]
        if not lost:
            continue
        named = ", ".join(lost[:SHOWN]) + (f" and {len(lost) - SHOWN} more" if len(lost) > SHOWN else "")
        seen = "the interface's own number" if prefix == NEVER else f"the interface's number {prefix}"
        fix = (
            "set sender_prefix to the start those numbers share (or take it out to send each number"
            " whole), or send from numbers under it"
        )
        if prefix != NEVER and _national(prefix):
            # Compared after a "+" or "00" only (`smsc.cimd2.messages.international_digits`): a prefix in
            # the national form matches no number, and "the start they share" was no help.
            fix = (
                f"{quoted(prefix)} is written in the national form, and numbers are compared in the"
                f" international form: write it {quoted(_international(cfg, prefix))}"
            )
        national = [where for where, numbers in sources if any(_national_phone(n) for n in numbers)]
        if national:
            fix += (
                f"; {', '.join(national[:SHOWN])} {'is' if len(national) == 1 else 'are'} written in the"
                f" national form: write {'it' if len(national) == 1 else 'each'} with + and the country"
                f" code ({_international(cfg, '')}…)"
            )
        doubts.append(
            f"{link_place(link.name, 'sender_prefix')}: {quoted(prefix)} cannot carry {named}: SMS by this"
            f" link reach phones from {seen}, and the phones' answers to it go to no user (to [replies]"
            f" fallback_address, if set); {fix}"
        )
    return doubts


def _national(number: str) -> bool:
    """Digits without the "+" or "00" of the international form (500100, 0500100)."""
    return number.isascii() and number.isdigit() and not number.startswith("00")


def _national_phone(number: str) -> bool:
    """A phone number in the national form (500100201), not a short code. A short code (7333,
    80100200) is national by nature: "+48 7333" reaches no one, so a sender of up to
    `SHORT_CODE_DIGITS` digits, as the SMPP link sends it (TON 3) and `gateway.senderform` stores it,
    is not told to take the country code. Seven digits here took an 8-digit short code for a phone."""
    return _national(number) and len(number) > SHORT_CODE_DIGITS


def _international(cfg: Config, national: str) -> str:
    """A national-form number or prefix in the international form of `[gateway] default_region`."""
    import phonenumbers

    code = phonenumbers.country_code_for_region(cfg.gateway.default_region)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(cfg.gateway.default_region)
    trunk = meta.national_prefix if meta is not None and meta.national_prefix else None
    digits = national.removeprefix(trunk) if trunk and national.startswith(trunk) else national
    return f"+{code}{digits}"
