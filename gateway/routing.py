"""Which SMSC link a number goes to: longest matching prefix first, then the default links.

Several links may serve one prefix (two binds, two operators); they are tried in configuration
order, and a link that is down or has just refused a part is passed over for the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence


class Router:
    def __init__(self, routes: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._by_prefix: list[tuple[str, str]] = []  # (prefix, link), longest prefix first
        self._default: list[str] = []
        for link, prefixes in routes:
            prefixes = list(prefixes)
            if not prefixes:
                self._default.append(link)
            for prefix in prefixes:
                self._by_prefix.append((prefix, link))
        self._by_prefix.sort(key=lambda pl: -len(pl[0]))  # stable: config order within a length

    def candidates(self, destination: str) -> list[str]:
        """Links able to send to `destination`, in the order to try them."""
        seen: list[str] = []
        for prefix, link in self._by_prefix:
            if destination.startswith(prefix) and link not in seen:
                seen.append(link)
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
    routes: Sequence[tuple[str, Sequence[str]]],
    up: Callable[[str], bool],
    pinned: Mapping[str, int] | None = None,
    siblings: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The routes none of whose links is up: each prefix whose numbers no link up may take, and
    OTHER_NUMBERS when the default links are all down. With prefix links alone, one link down
    left its prefixes' SMS waiting while `status` and /healthz said all was well (another link
    was up); a link down whose numbers another one takes is no such trouble.

    `pinned` counts the parts waiting for one link of their own (a premium answer leaves by its
    vote's link or another bind of that SMSC account, `siblings`, never by its number's route):
    with those links all down they wait as surely as an unserved prefix's, and status said nothing."""
    router = Router(routes)
    prefixes = sorted({prefix for _link, link_prefixes in routes for prefix in link_prefixes})
    found = [p for p in prefixes if not any(up(link) for link in router.candidates(p))]
    defaults = [link for link, link_prefixes in routes if not link_prefixes]
    if defaults and not any(up(link) for link in defaults):
        found.append(OTHER_NUMBERS)
    names = {link for link, _prefixes in routes}
    for via, count in sorted((pinned or {}).items()):
        own = [via, *(n for n in (siblings or {}).get(via, ()) if n in names)]
        if count > 0 and via in names and not any(up(link) for link in own):
            found.append(f"{count} part(s) pinned to link {via} (premium answers)")
    return found
