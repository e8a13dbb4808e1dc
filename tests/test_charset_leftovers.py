"""What reached phones from two kinds of mail that mail programs really send.

- Decomposed text (NFD), as Apple Mail writes it: "ż" arrives as "z" + U+0307, so "Z poważaniem"
  was no signature, an account's cut-from phrase did not match, and a subject's accents counted
  twice against its length.
- UTF-8 under a Western single-byte label (iso-8859-1, windows-1252), in the body or an encoded-word
  subject: "Zażółć" went out as "ZaÅ¼Ã³Å‚Ä‡" in UCS-2. A text really written in those charsets,
  and Polish text under its own label, stay as they were.

Each mail goes through a running gateway's real SMTP listener, and the text is read back from the
store the SMSC link sends from.
"""

from __future__ import annotations

import base64
import unicodedata
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601123456@{DOMAIN}"
POLISH = "Zażółć gęślą jaźń"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def raw_mail(n: int, body: bytes, ctype: str, subject: bytes | None = None, cte: str = "8bit") -> bytes:
    """A one-part mail; its subject is "Temat n" unless given (one subject per mail: the same one to the
    same phone again would be a conversation going on, sent without it)."""
    subject = subject if subject is not None else f"Temat {n}".encode()
    head = f"From: {STAFF}\r\nTo: {RCPT}\r\nMessage-ID: <leftover-{n}@acme.example>\r\nMIME-Version: 1.0\r\n"
    head += f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n"
    return head.encode() + b"Subject: " + subject + b"\r\n\r\n" + body + b"\r\n"


async def sent_texts(tmp_path: Path, mails: list[bytes], cut_from: tuple[str, ...] = ()) -> list[str]:
    """The SMS texts the gateway stored for `mails`, sent one by one over SMTP, in order."""
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            if cut_from:  # set while the daemon runs, from another connection, as `smsgw account set` does
                admin = Store.open(cfg.db_path)
                try:
                    (account,) = [a.name for a in admin.accounts.list_accounts()]
                    admin.accounts.update_account(account, cut_from=cut_from)
                finally:
                    admin.close()
            for raw in mails:
                res = await gw.send(raw, [RCPT])
                assert res.error is None and not res.refused, res
            return [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages ORDER BY id")]


# 1. Decomposed text


async def test_decomposed_mail_loses_its_signature_and_the_accounts_clause(tmp_path: Path) -> None:
    signed = nfd("Proszę o raport.\r\n\r\nZ poważaniem\r\nJan Kowalski\r\nACME Sp. z o.o.\r\n")
    clause = nfd("Oddzwoń.\r\n\r\nTreść tej wiadomości jest poufna i prawnie chroniona.\r\n")
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(1, signed.encode(), "text/plain; charset=utf-8", subject=b"Raport"),
            raw_mail(2, clause.encode(), "text/plain; charset=utf-8", subject=b"Pilne"),
        ],
        cut_from=("Treść tej wiadomości",),
    )
    assert texts == ["Raport: Proszę o raport.", "Pilne: Oddzwoń."]


async def test_a_decomposed_subject_counts_each_letter_once(tmp_path: Path) -> None:
    subject = "Żółta łódź już w środę rano"  # 27 letters: the 30-character cut leaves it whole
    encoded = b"=?utf-8?B?" + base64.b64encode(nfd(subject).encode()) + b"?="
    texts = await sent_texts(tmp_path, [raw_mail(3, b"Potwierdzam.", "text/plain", subject=encoded)])
    assert texts == [f"{subject}: Potwierdzam."]


# 2. UTF-8 under a Western single-byte label


async def test_utf8_under_a_latin1_or_windows_1252_label_is_read_as_utf8(tmp_path: Path) -> None:
    word = b"=?iso-8859-1?Q?" + "".join(f"={b:02X}" for b in "Łódź".encode()).encode() + b"?="
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(4, POLISH.encode(), "text/plain; charset=iso-8859-1"),
            raw_mail(5, POLISH.encode(), "text/html; charset=windows-1252"),
            raw_mail(6, b"ok", "text/plain; charset=us-ascii", subject=word),
        ],
    )
    assert texts == [f"Temat 4: {POLISH}", f"Temat 5: {POLISH}", "Łódź: ok"]


async def test_text_really_in_its_labelled_charset_stays_as_written(tmp_path: Path) -> None:
    french = "Un café crème, s’il vous plaît — 5 €"
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(7, french.encode("cp1252"), "text/plain; charset=windows-1252"),
            raw_mail(8, "café".encode("latin-1"), "text/plain; charset=iso-8859-1"),
            raw_mail(9, POLISH.encode("iso-8859-2"), "text/plain; charset=iso-8859-2"),
            # Valid UTF-8 by chance ("ÓŁ" is D3 A3): a Central European label is believed.
            raw_mail(10, "PÓŁNOC".encode("iso-8859-2"), "text/plain; charset=iso-8859-2"),
            raw_mail(11, b"ok", "text/plain", subject=b"=?iso-8859-1?Q?Caf=E9?="),
        ],
    )
    assert texts == [
        f"Temat 7: {french}",
        "Temat 8: café",
        f"Temat 9: {POLISH}",
        "Temat 10: PÓŁNOC",
        "Café: ok",
    ]
