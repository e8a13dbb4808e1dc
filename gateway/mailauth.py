"""The relay login of a probe (`SmtpRelayMailer.probe`): one AUTH mechanism, the one a send tries
first. aiosmtplib's `login` goes on to the next mechanism the relay offers after a refusal (PLAIN,
then LOGIN), as some relays offer ones they do not take: for a send that is one more chance, but a
probe with a wrong password cost the relay two failed logins each, which lockouts and fail2ban
count. A probe only needs to know whether the login a send makes first is taken."""

from __future__ import annotations

import aiosmtplib


async def login_once(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """Logs in with the relay's first mechanism in aiosmtplib's order, raising its refusal as
    `login` does; with none offered, `login`'s own error."""
    if client.last_ehlo_response is None:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()  # no ESMTP: no AUTH either, which `login` says
    methods = client.supported_auth_methods
    if not methods:
        await client.login(username, password)
        return
    await getattr(client, f"auth_{methods[0].replace('-', '')}")(username, password)
