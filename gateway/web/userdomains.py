"""Which addresses a company admin may add: those at a domain their account holds.

A domain is one account's for its admin's adds: the account of its earliest user (the lowest user
id among the users at it, operators' logins aside). Once the operator had moved one address of a
domain to another account (anna@acme.example, now beta's), beta's admin could add any unused
address there (carl@, even the address of acme's premium service), after which acme's admin could
not add it, and beta's admin set its password. The earliest user is the one that brought the
domain to the gateway: a user moved later is removed and added again, so a new id, and acme keeps
adding at its domain. A domain whose holder should change is the operator's to move (its users).
A public mail provider's domain (gmail.com, wp.pl…) is nobody's: staff of several companies use it,
and the first company with a user there held it against every other.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.accountdomains import account_domains, domain_holder
from gateway.web.pages import Invalid

# Public mail providers, international and Polish: addresses there are their people's, not a company's.
PUBLIC_MAIL = frozenset(
    """gmail.com googlemail.com outlook.com hotmail.com live.com msn.com yahoo.com icloud.com me.com
    aol.com proton.me protonmail.com gmx.com gmx.net gmx.de mail.com yandex.com zoho.com wp.pl o2.pl
    onet.pl onet.eu op.pl vp.pl poczta.onet.pl interia.pl interia.eu poczta.fm tlen.pl gazeta.pl
    go2.pl spoko.pl autograf.pl buziaczek.pl int.pl""".split()
)

# The account's domains a refusal names: an account of more says "…" after them.
NAMED = 20


async def within_account(web: Any, account_id: int, email: str) -> None:
    """A company admin adds addresses of the domains their account's users already have, and only
    those their account holds (`accountdomains.domain_holder`).

    An address is one user in one account; an admin who could add `someone@rival.example` would
    take it from the rival, whose admin could then neither add nor remove it, and whose mail
    from it the relay would refuse. A new domain for an account is the operator's to add.
    Read on the panel's reader thread: both reads go through the account's users (the holder
    through every user), and on the loop's connection each add held SMTP and the links for as
    long (100-150 ms at 200,000 users)."""
    domain = email.rpartition("@")[2].lower()

    def read(conn: sqlite3.Connection) -> tuple[list[str], int | None]:
        domains = account_domains(conn, account_id, domain, NAMED + 1)
        if domains[:1] != [domain] or domain in PUBLIC_MAIL:
            return domains, account_id
        return domains, domain_holder(conn, domain)

    domains, holder = await web.counts.run(read)
    if domains[:1] != [domain]:
        more = ", …" if len(domains) > NAMED else ""
        raise Invalid(
            f"{email} is not at a domain of this account ({', '.join(domains[:NAMED])}{more});"
            " the operator adds the first address of another domain",
            "email",
        )
    if holder != account_id:
        # Which account holds it stays unsaid: an admin learns nothing of other accounts' users.
        raise Invalid(  # on the users page, the address as typed and its field marked (a 403 page lost it)
            f"{email} cannot be added: addresses at {domain} are added by another account's admin;"
            " ask the operator",
            "email",
        )
