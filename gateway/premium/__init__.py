"""Premium-rate services (SPEC R-4): KPxxx passwords, verified client addresses, free answers, money.

The package owns its tables (`premium_*`, one migration) and their SQL (`repo`), its handlers and
its CLI subcommands. The spine calls it through one function each: `on_whole_mo` from the MO write
(gateway/events.py) before the conversations see the MO, `target`/`known`/`on_mail` from the relay
port for mail to an answer or confirmation address (gateway/smtp/relay.py), and `add_commands`
from the command line (gateway/cli/main.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazynames import lazy_getattr

if TYPE_CHECKING:
    from gateway.premium.cli import add_commands
    from gateway.premium.handlers import on_whole_mo
    from gateway.premium.intake import known, on_mail
    from gateway.premium.passwords import Target, target

# Each name and the module that defines it, imported the first time the name is read (PEP 562): the
# command line imports this package to add its subcommands, and `smsgw --help` must not import the
# handlers, the store and the SMTP side for that.
_WHERE = {
    "add_commands": "gateway.premium.cli",
    "on_whole_mo": "gateway.premium.handlers",
    "known": "gateway.premium.intake",
    "on_mail": "gateway.premium.intake",
    "Target": "gateway.premium.passwords",
    "target": "gateway.premium.passwords",
}

__all__ = ["Target", "add_commands", "known", "on_mail", "on_whole_mo", "target"]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
