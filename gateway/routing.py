"""Which SMSC link a number goes to: longest matching prefix first, then the default links.

Several links may serve one prefix (two binds, two operators); they are tried in configuration
order, and a link that is down or has just refused a part is passed over for the next one.
Links named for the same prefix form one route: a part waits for a place in its route's window
rather than leave by a less specific route (another operator, another price, another sender
number on CIMD2, and the parts of one long SMS split between two SMSCs).
"""

from __future__ import annotations

from collections.abc import Iterable


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

    def routes(self, destination: str) -> list[list[str]]:
        """The links able to send to `destination`, grouped by route (a prefix, then the default
        links), most specific first; each link appears once, in its most specific route."""
        routes: list[list[str]] = []
        seen: set[str] = set()
        last = None
        for prefix, link in self._by_prefix:
            if not destination.startswith(prefix) or link in seen:
                continue
            if prefix != last:
                routes.append([])
                last = prefix
            routes[-1].append(link)
            seen.add(link)
        default = [link for link in self._default if link not in seen]
        if default:
            routes.append(default)
        return routes

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
