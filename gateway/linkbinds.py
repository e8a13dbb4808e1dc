"""Which configured link a link no longer configured was: the one with its SMSC bind (protocol,
host, port and login), a link renamed.

A long SMS whose part the old name's SMSC took waits for that link (`gateway.linkchoice`). Under a
new name, the same SMSC went for gone: the whole SMS went again, under a new reference, to that very
SMSC, and the phone got its first parts twice. The store keeps each link's bind under its name (the
store's key/value table, keys `link_bind/NAME`), so that a start finds an old name's bind again; a name
no configured link shares a bind with is a link removed, waited for as a link down.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.configlinks import bind_key
from gateway.linkendpoint import is_retired
from gateway.linkprotocol import changed_protocols, followers, send_again_at_start
from gateway.store.db import Store
from gateway.store.keyvalue import keys_under
from smsc.base import SmscLink

PREFIX = "link_bind/"


def bind_of(link: SmscLink) -> str | None:
    """The link's SMSC bind as one string (`configlinks.bind_key`, as binds of one account are told);
    None for a driver without settings (none in the daemon)."""
    settings = getattr(link, "cfg", None)
    if settings is None:
        return None
    kind = type(link).__module__.split(".")[1] if type(link).__module__.startswith("smsc.") else "?"
    return "|".join(bind_key(kind, settings.host, settings.port, settings.system_id))


def renamed_links(store: Store, links: Mapping[str, SmscLink]) -> dict[str, str]:
    """Inside a store write: the links' binds noted under their names, and each name noted before that
    is no longer configured -> the configured link of its bind (the first such). A link whose
    protocol changed since is another bind: what its old bind had out goes under the name of the
    link that has that bind now, or is given up (`gateway.linkprotocol`); so is one pointed at another
    host, port or login (`gateway.linkendpoint`). Not in the map: a name
    still configured is its own link's (`LinkChoice.own`), so its parts take the other name."""
    conn = store.db.conn
    binds = {name: bind for name, link in links.items() if (bind := bind_of(link)) is not None}
    by_bind: dict[str, str] = {}
    for name, bind in binds.items():
        by_bind.setdefault(bind, name)
    rows = keys_under(conn, PREFIX)
    renamed = {old: by_bind[bind] for old, bind in rows if old not in links and bind in by_bind}
    # A link of another protocol or endpoint under the same name is another bind (`gateway.linkprotocol`,
    # `gateway.linkendpoint`): what its old bind had out follows that bind to the link that has it
    # now, if one does.
    if changed := changed_protocols(rows, binds):
        send_again_at_start(store, changed, followers(dict(rows), binds, changed))
    # The SMS an old endpoint took wait under a name of their own: matched on any link as a renamed
    # link's are, the new SMSC's receipts under the same ids took them. Only once a block has that
    # bind again.
    store.queue.gone_links = tuple(n for n in store.queue.gone_links if not is_retired(n) or n in renamed)
    conn.executemany(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value != excluded.value",
        [(PREFIX + name, bind) for name, bind in binds.items()],
    )
    return renamed
