"""A MAIL or RCPT path holding a raw control character (a NUL, a bare CR) is refused `553 5.1.3`, as one
with bytes that are not UTF-8 is.

RFC 5321 4.1.2 lets no path hold one, quoted or not, but the email package's grammar read
`<anna@acme.example\\x00evil>` whole, and the hooks got it as an address: on a relay port taking
premium answers (which only RCPT tells apart) the sender heard `250`, and a recipient was echoed back
in the relay refusal. Raw bytes over a real socket against the running daemon.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, config_text, running_gateway
from tests.test_session_limits import blocking, dial, read_reply

RCPT = f"601123456@{DOMAIN}"
# Spelled out, so that the test also runs (and fails) against code without them.
NUL = "553 5.1.3 Address not valid: it holds a control character (U+0000), which no address may hold"
CR = "553 5.1.3 Address not valid: it holds a control character (U+000D), which no address may hold"
US = "553 5.1.3 Address not valid: it holds a control character (U+001F), which no address may hold"
IN_PARAMS = "501 5.5.4 Syntax error in parameters: a control character (U+0000), which none may hold"
DIALOGUE: list[tuple[bytes, str]] = [
    (f"MAIL FROM:<{STAFF}\x00evil>".encode(), NUL),
    (f"MAIL FROM:<{STAFF}\revil>".encode(), CR),
    (b'MAIL FROM:<"an\x00na"@acme.example>', NUL),
    (f"MAIL FROM:{STAFF}\x00evil".encode(), NUL),  # a bare address, no brackets
    # A quoted `>` ends no path: the character past it is still the path's.
    (b'MAIL FROM:<"a>b"@acme.example\x00evil>', NUL),
    (b'MAIL FROM:<"a>b\x00"@acme.example>', NUL),
    # Read as whitespace where DSN parameters are split off the line: it was gone before the path was.
    (b'MAIL FROM:<"a>b\x1f"@acme.example> RET=HDRS', US),
    (f"MAIL FROM:<{STAFF}> ENVID=a\x00b".encode(), IN_PARAMS),  # no parameter may hold one either
    (f"MAIL FROM:<{STAFF}> SIZE=100".encode(), replies.OK_SENDER),  # the user's own, as ever
    (f"RCPT TO:<{RCPT}\x00x>".encode(), NUL),
    (f"RCPT TO:<{RCPT}\rx>".encode(), CR),
    (f'RCPT TO:<"6>0"@{DOMAIN}\x00x>'.encode(), NUL),
    (f'RCPT TO:<"6>0\r"@{DOMAIN}> NOTIFY=NEVER'.encode(), CR),
    (f"RCPT TO:<{RCPT}> NOTIFY=NEVER\x00".encode(), IN_PARAMS),
    (f"RCPT TO:<{RCPT}>".encode(), replies.OK_RCPT),
]


async def test_a_path_with_a_nul_or_a_bare_cr_is_refused_553_at_mail_and_rcpt(tmp_path: Path) -> None:
    # [premium] numbers: the relay port then decides a sender's fate at RCPT, so MAIL took anything.
    text = config_text(tmp_path, smsc_port=1, extra='\n[premium]\nnumbers = ["7355"]\n')
    cfg = parse_config(text, source="test config", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                s.sendall(b"EHLO mx.acme.example\r\n")
                while not read_reply(s).startswith("250 "):
                    pass
                answers = []
                for line, _ in DIALOGUE:
                    s.sendall(line + b"\r\n")
                    answers.append(read_reply(s))
                s.sendall(b"QUIT\r\n")
                return answers

        answers = await blocking(session)
    assert answers == [want for _, want in DIALOGUE], answers
