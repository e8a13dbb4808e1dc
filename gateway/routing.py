"""Which SMSC link a number goes to: longest matching prefix first, then the default links.

Several links may serve one prefix (two binds, two operators); they are tried in configuration
order, and a link that is down or has just refused a part is passed over for the next one.

A link marked `exclusive` (`[[smsc]] exclusive = true`, Kannel's allowed-prefix) keeps its prefixes'
numbers to the links listing a matching prefix: only that operator may carry them (its own SMSC, a
contract, a sender ID another operator rewrites), so with those links down or full they wait, and
expire by their validity, instead of leaving by a default link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

# A link's route as `Config.routes()` gives it: (link, its prefixes, exclusive). The flag may be left
# out, (link, prefixes), for a link that is not exclusive.
Route = tuple[str, Sequence[str]] | tuple[str, Sequence[str], bool]


def route_parts(route: Route) -> tuple[str, list[str], bool]:
    """(link, prefixes, exclusive) of a route written with or without its exclusive flag."""
    link, prefixes, *flag = route
    return link, list(prefixes), bool(flag and flag[0])


class Router:
    """The links to try for a number, in order.

    The rule for exclusive prefixes: the prefixes matching a number are taken longest first, and the
    first exclusive one among them ends the list, its own links included (every link listing that
    prefix, exclusive or not): neither the links of shorter prefixes nor the default links are tried.
    So with "+4860" exclusive on link A and "+48" a plain prefix of link B, +48601… goes by A alone;
    with "+48" exclusive on A and "+4860" on B, it goes by B, then A, never by a default link (a
    longer prefix is the admin's own choice of link for those numbers, and A's promise holds)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_prefix: list[tuple[str, str]] = []  # (prefix, link), longest prefix first
        self._default: list[str] = []
        self._exclusive: set[str] = set()  # prefixes listed by an exclusive link
        for route in routes:
            link, prefixes, exclusive = route_parts(route)
            if not prefixes:
                self._default.append(link)
            for prefix in prefixes:
                self._by_prefix.append((prefix, link))
                if exclusive:
                    self._exclusive.add(prefix)
        self._by_prefix.sort(key=lambda pl: -len(pl[0]))  # stable: config order within a length

    def candidates(self, destination: str) -> list[str]:
        """Links able to send to `destination`, in the order to try them (see the class's rule for
        exclusive prefixes)."""
        seen: list[str] = []
        cut = 0  # the length of the exclusive prefix matched: no shorter prefix's links, no default
        for prefix, link in self._by_prefix:
            if len(prefix) < cut:
                break
            if destination.startswith(prefix):
                if link not in seen:
                    seen.append(link)
                if prefix in self._exclusive:
                    cut = len(prefix)
        if cut:
            return seen
        for link in self._default:
            if link not in seen:
                seen.append(link)
        return seen

    def serves(self, destination: str) -> bool:
        """Whether any link may take `destination`: what RCPT asks of every number, so that a number
        with no link is refused at once instead of accepted and retried until it expires."""
        return bool(self._default) or any(destination.startswith(prefix) for prefix, _ in self._by_prefix)


OTHER_NUMBERS = "numbers outside the prefixes"


def unserved(
    routes: Sequence[Route],
    up: Callable[[str], bool],
    pinned: Mapping[str, int] | None = None,
    siblings: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The routes none of whose links is up: each prefix whose numbers no link up may take, and
    OTHER_NUMBERS when the default links are all down. With prefix links alone, one link down
    left its prefixes' SMS waiting while `status` and /healthz said all was well (another link
    was up); a link down whose numbers another one takes is no such trouble. An exclusive link's
    prefix is unserved while its links are down though a default link is up (`Router`).

    `pinned` counts the parts waiting for one link of their own (a premium answer leaves by its
    vote's link or another bind of that SMSC account, `siblings`, never by its number's route):
    with those links all down they wait as surely as an unserved prefix's, and status said nothing."""
    router = Router(routes)
    parts = [route_parts(route) for route in routes]
    prefixes = sorted({prefix for _link, link_prefixes, _excl in parts for prefix in link_prefixes})
    found = [p for p in prefixes if not any(up(link) for link in router.candidates(p))]
    defaults = [link for link, link_prefixes, _excl in parts if not link_prefixes]
    if defaults and not any(up(link) for link in defaults):
        found.append(OTHER_NUMBERS)
    names = {link for link, _prefixes, _excl in parts}
    for via, count in sorted((pinned or {}).items()):
        own = [via, *(n for n in (siblings or {}).get(via, ()) if n in names)]
        if count > 0 and via in names and not any(up(link) for link in own):
            found.append(f"{count} part(s) pinned to link {via} (premium answers)")
    return found
