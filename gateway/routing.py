"""Which SMSC link a number goes to: longest matching prefix first, then the default links.

Several links may serve one prefix (two binds, two operators); they are tried in configuration
order, and a link that is down or has just refused a part is passed over for the next one.
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
