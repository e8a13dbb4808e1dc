"""A relay network is one account's: `account add --relay-network` and `account set --add-network`
refuse one that is or holds another account's network (the rule: `relaynets.network_refusal`, which
the operator's panel applies too), except one equal to another's given with `--shared`: the admin's
word that one mail server there serves both companies.

The relay port takes mail from a listed network without a password, from any envelope sender on its
account's user list (SPEC R-2.1 b). Beta given 127.0.0.0/29 over acme's mail server at 127.0.0.2
let that server send as beta's users, on beta's bill, and the CLI said "account beta updated".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.common import CliError

if TYPE_CHECKING:
    from gateway.store.db import Store


def refuse_overlaps(store: Store, name: str, cidrs: list[str], option: str, shared: bool = False) -> None:
    """Raise (exit 1) naming the other account and its network when one of `cidrs`, about to be
    `name`'s, is or holds another account's network; read in the transaction that stores them, so
    nothing is written. A host carved out of another account's wider network is taken, and said; so
    is another account's very network under `shared`."""
    from gateway.relaynets import network_refusal

    refusal, notes = network_refusal(store.db.conn, name, cidrs, option, shared=shared, cli=True)
    if refusal is not None:
        raise CliError(refusal)
    for note in notes:
        print(f"note: {note}")
