"""R-1.3 over real SMTP: an HTML-only mail keeps its link targets in the SMS, once and only where a
phone can open them (not mailto:, javascript: or an in-page anchor; not twice when the text is the URL).
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601123456@{DOMAIN}"


def html_mail(markup: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = RCPT
    msg["Message-ID"] = "<html-links@acme.example>"
    msg.set_content(markup, subtype="html")
    return msg


async def sms_text(tmp_path: Path, markup: str) -> str:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(html_mail(markup))
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1, texts
    return str(texts[0])


async def test_a_links_target_follows_its_text(tmp_path: Path) -> None:
    text = await sms_text(
        tmp_path,
        '<html><body><p>Meeting at <a href="https://meet.example.com/abc">this link</a></p></body></html>',
    )
    assert text == "Meeting at this link (https://meet.example.com/abc)"


async def test_no_target_for_mailto_javascript_anchors_or_a_text_that_is_the_url(tmp_path: Path) -> None:
    markup = (
        "<html><body><div>"
        '<a href="mailto:anna@acme.example">Write to Anna</a>, '
        '<a href="javascript:void(0)">click</a>, <a href="#agenda">agenda</a>, '
        '<a href="https://acme.example/plan">https://acme.example/plan</a>, '
        '<a href="https://www.acme.example/">acme.example</a>'
        "</div></body></html>"
    )
    text = await sms_text(tmp_path, markup)
    assert text == "Write to Anna, click, agenda, https://acme.example/plan, acme.example"


def tracking_url(n: int) -> str:
    """A click-tracking link as newsletters and booking systems write them: about 440 characters."""
    token = "".join(f"{(n * 7919 + i * 104729) % 2**32:08x}" for i in range(49))
    return f"https://click.booking.example.com/ls/click?upn={token}-2Bq{n}"


async def test_tracking_links_leave_the_sms_as_short_as_its_text(tmp_path: Path) -> None:
    # Three ~440-character targets made a 62-character notice 10 parts, cut off mid-URL.
    urls = [tracking_url(n) for n in (1, 2, 3)]
    assert all(430 <= len(u) <= 450 for u in urls)
    markup = (
        f"<p>Dzień dobry, spotkanie jutro o 10:00. <a href={urls[0]}>Potwierdź</a> albo "
        f"<a href={urls[1]}>odwołaj</a>.\nSzczegóły <a href={urls[2]}>tutaj</a>.</p>"
    )
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(html_mail(markup))
        assert res.error is None and not res.refused, res
        rows = gw.store.db.conn.execute("SELECT text, parts_total FROM messages").fetchall()
    assert [tuple(r) for r in rows] == [
        ("Dzień dobry, spotkanie jutro o 10:00. Potwierdź albo odwołaj. Szczegóły tutaj.", 2)
    ]


async def test_short_targets_are_shown_within_one_parts_worth(tmp_path: Path) -> None:
    # Each 76-character meeting link is worth showing; the third would pass 160 characters of targets.
    urls = [
        f"https://us06web.zoom.us/j/8123456789{n}?pwd=aBcDeFgHiJkLmNoPqRsTuVwXyZ012345.1" for n in range(3)
    ]
    markup = "<p>" + ", ".join(f'<a href="{u}">room {n}</a>' for n, u in enumerate(urls)) + "</p>"
    text = await sms_text(tmp_path, markup)
    assert text == f"room 0 ({urls[0]}), room 1 ({urls[1]}), room 2"


async def test_a_reply_below_the_quote_keeps_its_own_links_target(tmp_path: Path) -> None:
    # Thunderbird quotes above the reply: the quoted links, first in the document, spent the targets'
    # budget though the quote never reaches the phone, and the sender's meeting link showed none.
    meet = "https://meet.google.com/abc-defg-hij"
    quoted = ["https://intranet.acme.example/" + c * 50 for c in "ab"]
    markup = (
        '<html><body><div class="moz-cite-prefix">On Monday Anna wrote:</div>'
        f'<blockquote type="cite"><p>See <a href="{quoted[0]}">the report</a> and '
        f'<a href="{quoted[1]}">the slides</a>.</p></blockquote>'
        f'<p>OK, join me at <a href="{meet}">this link</a> at 10.</p></body></html>'
    )
    text = await sms_text(tmp_path, markup)
    assert text == f"OK, join me at this link ({meet}) at 10."


async def test_a_mail_that_is_nothing_but_a_quote_keeps_the_quoted_links_targets(tmp_path: Path) -> None:
    markup = (
        '<html><body><blockquote type="cite"><p>Join at <a href="https://meet.google.com/abc-defg-hij">'
        "this link</a>.</p></blockquote></body></html>"
    )
    text = await sms_text(tmp_path, markup)
    assert "this link (https://meet.google.com/abc-defg-hij)" in text, text


async def test_a_target_wrapped_over_lines_is_shown_as_the_address_a_browser_opens(tmp_path: Path) -> None:
    markup = '<html><body><p>Join <a href="https://zoom.us/j/123\n456?pwd=abc">here</a> now</p></body></html>'
    text = await sms_text(tmp_path, markup)
    assert text == "Join here (https://zoom.us/j/123456?pwd=abc) now"
