"""A relay network is one account's: `account add --relay-network` and `account set --add-network`
refuse one that is or holds another account's network.

The relay port takes mail from a listed network without a password, from any envelope sender on its
account's user list (SPEC R-2.1 b). Beta given 127.0.0.0/29 over acme's mail server at 127.0.0.2
let that server send as beta's users, on beta's bill, and the CLI said "account beta updated".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.common import CliError

if TYPE_CHECKING:
    from gateway.store.db import Store


def refuse_overlaps(store: Store, name: str, cidrs: list[str], option: str) -> None:
    """Raise (exit 1) naming the other account and its network when one of `cidrs`, about to be
    `name`'s, is or holds another account's network; read in the transaction that stores them, so
    nothing is written. A host carved out of another account's wider network is taken, and said:
    the relay gives it to the narrower network's account alone (`relaynets.relay_owners`)."""
    from gateway.relaynets import carved_out, overlapping

    if not cidrs:
        return
    rows = store.db.conn.execute(
        "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id"
        " WHERE a.name != ? ORDER BY 1, 2",
        (name,),
    ).fetchall()
    notes = []
    for cidr in cidrs:
        for other, other_cidr in overlapping(cidr, rows):
            if carved_out(cidr, other_cidr):
                notes.append(
                    f"note: {cidr} is inside account {other}'s relay network {other_cidr}: mail from there"
                    f" is now taken only from users of account {name}, no longer of {other}"
                )
                continue
            held = "is" if cidr == other_cidr else "holds"
            raise CliError(
                f"{option} {cidr} {held} account {other}'s relay network {other_cidr}: a mail server there"
                f" could send as users of either account, without a password (each network is one"
                f" account's); give a network that leaves {other_cidr} out, or take it off {other} first"
                f" (`smsgw account set {other!r} --remove-network {other_cidr}`)"
            )
    for note in notes:
        print(note)
