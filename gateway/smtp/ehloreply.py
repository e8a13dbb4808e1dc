"""aiosmtpd's EHLO, its reply's continuation lines made once per server class and set of lines.

A relay's MTA often brings one mail a connection, so every mail pays an EHLO: aiosmtpd pushes its
eight lines one at a time, each through a coroutine and the servers' reply steps (`_reply_text` of
three classes, the enhanced-code lookup, the checks and encoding of `LeanSMTP.push`), some 300 k
instructions a connection. The lines are the same at every connection of a listener (its name,
size limit, extensions; STARTTLS until TLS is on), and what the reply steps make of a continuation
line depends on the line and the server's class alone: the enhanced code is added to the last line
only, the reply counts of the gate count only the last line, a postmaster's `said_to` only rewrites a
`250 ` line, and the envelope is new (no SMTPUTF8 asked) when they run. So the continuation lines'
bytes and the keywords the guard notes from them are kept per class and lines, and only the last line
goes through `push`, which writes them with it as before, and sets what a reply sets (the session's
progress, the reply count). The bytes written and the state left are the same as line by line.

Whatever this copy of aiosmtpd's `smtp_EHLO` does not cover takes aiosmtpd's own: another aiosmtpd
version, a server with the deprecated `ehlo_hook`, a handler with the 4-argument EHLO hook.
"""

from __future__ import annotations

from typing import Any

import aiosmtpd
from aiosmtpd.smtp import SMTP

WRITTEN_FOR = "1.4.6"  # the aiosmtpd whose `SMTP.smtp_EHLO` `ehlo` does the work of
_KEPT_MAX = 32  # sets of lines kept; a hook that put a client's words in its lines would make more
_kept: dict[tuple[Any, ...], tuple[bytes, list[str]]] = {}


async def ehlo(server: Any, hostname: str) -> None:
    """`SMTP.smtp_EHLO(server, hostname)` of aiosmtpd 1.4.6, the reply written by `_push_lines`.
    `server` is a `guard.GuardedSMTP` under way in its EHLO (its `_advertised` a list)."""
    if aiosmtpd.__version__ != WRITTEN_FOR or hasattr(server, "ehlo_hook") or server._ehlo_hook_ver == "old":
        await SMTP.smtp_EHLO(server, hostname)
        return
    if not hostname:
        await server.push("501 Syntax: EHLO hostname")
        return
    response = ["250-" + server.hostname]
    server._set_rset_state()
    assert server.session is not None
    server.session.extended_smtp = True
    if server.data_size_limit:
        response.append(f"250-SIZE {server.data_size_limit}")
        server.command_size_limits["MAIL"] += 26
    if not server._decode_data:
        response.append("250-8BITMIME")
    if server.enable_SMTPUTF8:
        response.append("250-SMTPUTF8")
        server.command_size_limits["MAIL"] += 10
    if server.tls_context and not server._tls_protocol:
        response.append("250-STARTTLS")
    if not server._auth_require_tls or server._tls_protocol:
        response.append("250-AUTH " + " ".join(sorted(server._auth_methods.keys())))
    if server._ehlo_hook_ver is None:
        server.session.host_name = hostname
        response.append("250 HELP")
    else:  # "new": the hook replaces the list of lines
        response.append("250 HELP")
        response = await server._call_handler_hook("EHLO", hostname, response)
    await _push_lines(server, response)


async def _push_lines(server: Any, lines: list[str]) -> None:
    """`await server.push(line)` for each line, the continuation lines' work done once per class."""
    advertised = server._advertised
    if (
        len(lines) < 2
        or advertised is None
        or server._input_over
        or not lines[-1].startswith("250 ")
        or not all(line.startswith("250-") for line in lines[:-1])
    ):
        for line in lines:
            await server.push(line)
        return
    envelope = server.envelope
    key = (type(server), envelope is not None and envelope.smtp_utf8, *lines[:-1])
    kept = _kept.get(key)
    if kept is not None:
        server._held.append(kept[0])
        advertised.extend(kept[1])
    else:
        held, noted = len(server._held), len(advertised)
        for line in lines[:-1]:
            await server.push(line)
        made = len(lines) - 1  # each held, each keyword noted: else (the session ending) not kept
        if len(server._held) == held + made and len(advertised) == noted + made and len(_kept) < _KEPT_MAX:
            _kept[key] = (b"".join(server._held[held:]), advertised[noted:])
    await server.push(lines[-1])
