"""A loop between a helpdesk mailbox that acknowledges every mail without marking it automatic and a
phone's auto-reply app: each answer mail drew an acknowledgement within seconds, an SMS to the phone,
which answered again; 12 rounds were 12 SMS, bounded only by the 30 answer mails a phone an hour.
The fourth mail in a row that comes within a minute of the phone's answer mail with the same text
(digits aside) is refused as a loop; a person answering as fast with words of their own is not.
The real daemon, its simulator over SMPP answering as the phone, a real SMTP sink for the relay.

The mail's text was compared with the rounds' SMS as planned: an acknowledgement with `’` or `–`
(GSM 03.38 has neither), or Polish letters under transliteration, never equalled them and looped on;
so did one whose ticket ids hold letters (`a3f9c1`). And one answer from the phone made a person's
fourth quick follow-up in the thread ("Gate 3" ... "Gate 6") a loop: each round needs an answer of
its own, after the round before it.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.conversations.loopguard import Timing
from gateway.smtp import mailloop
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config

AUTO_REPLY = "Prowadze, odpisze pozniej"
REFUSED = '(550, b"5.7.1 Not sent: looks like a mail loop: the same text went from you to +48601123456'
# Right for a program and for a person who sends the same line each time: no "automatic mailbox".
WORDS = (
    "3 times within 60 minutes, each within 10 minutes of the phone's same answer, sent within 15 seconds"
    " of the SMS, as an auto-reply app does; stop the phone's auto-reply; a person answering should use"
    " other words; if a program writes these mails in answer to the phone's, mark them Auto-Submitted:"
    " auto-replied (RFC 3834): they are recorded, not sent as SMS; if you write them, change the words"
)
T0 = 1_800_000_000.0


async def rounds(
    tmp_path: Path,
    texts: list[str],
    transliterate: bool = False,
    *,
    delay: float = 2.0,
    replies: list[str] | None = None,
    subject: Callable[[int, str], str] | None = None,
) -> list[str | None]:
    """The user's SMS, then for each text: the phone's auto-reply (or `replies`' next one), and the
    mailbox's mail back `delay` seconds after the answer mail, on the daemon's injected clock; its
    subject a Reply's, or `subject(round, the answer mail's subject)`."""
    relay = free_port()
    now = [T0]
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay), lambda: now[0]) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        if transliterate:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", transliterate=1))
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Zgloszenie", subject="Serwis"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        errors: list[str | None] = []
        for i, text in enumerate(texts, 1):
            now[0] += 5
            reply = AUTO_REPLY if replies is None else replies[i - 1]
            command = {"op": "mo", "reply_to_last": True, "text": reply}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(i)
            now[0] += delay
            sent = len(core.records)
            back = answer_to(answer := parsed(sink.messages[i - 1][2]), text)
            if subject is not None:
                back.replace_header("Subject", subject(i, str(answer["Subject"])))
            result = await gw.send(back)
            errors.append(None if result.error is None else str(result.error))
            if result.error is None:
                await gw.until(lambda sent=sent: len(core.records) == sent + 1)
    return errors


async def test_the_fourth_fast_identical_round_is_refused_as_a_loop(tmp_path: Path) -> None:
    errors = await rounds(tmp_path, [f"Dziekujemy, zgloszenie {100 + i} przyjete" for i in range(5)])
    assert errors[:3] == [None, None, None], errors
    assert errors[3] is not None and REFUSED in errors[3], errors
    assert WORDS in errors[3], errors


async def test_a_person_answering_as_fast_in_their_own_words_is_not_refused(tmp_path: Path) -> None:
    texts = ["Kiedy bedziesz?", "Ok, czekam", "Daj znac po 15", "Dobrze, to do jutra", "Pa"]
    assert await rounds(tmp_path, texts) == [None] * 5


HEX_IDS = ["7f3a9c", "b81e04", "c0ffee", "d2a9f1", "e5b7aa"]


@pytest.mark.parametrize(
    ("texts", "transliterate"),
    [
        # GSM 03.38 has neither `’` nor `–`: the SMS went with `'` and `-`.
        ([f"We\u2019ve received your message \u2013 ticket {100 + i} opened." for i in range(5)], False),
        ([f"Dziękujemy, zgłoszenie {100 + i} przyjęte" for i in range(5)], True),  # sent without ę, ł
        ([f"Ticket {i} received, thank you" for i in HEX_IDS], False),  # ids with letters
    ],
    ids=["typographic", "transliterated", "hex-ids"],
)
async def test_a_loop_whose_text_the_sms_rewrites_is_refused_at_the_fourth_round(
    tmp_path: Path, texts: list[str], transliterate: bool
) -> None:
    errors = await rounds(tmp_path, texts, transliterate)
    assert errors[:3] == [None, None, None], errors
    assert errors[3] is not None and REFUSED in errors[3], errors


async def test_quick_follow_ups_after_one_answer_are_no_loop(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (
            await gw.send(mail(f"601123456@{DOMAIN}", body="Where are you?", subject="Meeting"))
        ).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Stuck in traffic"}
        assert (await send_command("127.0.0.1", control, command))["ok"]
        await sink.wait(1)
        answer = parsed(sink.messages[0][2])
        errors = [
            None
            if (result := await gw.send(answer_to(answer, f"Gate {gate}"))).error is None
            else str(result.error)
            for gate in range(3, 7)
        ]
        assert errors == [None] * 4, errors  # alike, digits aside: but the phone answered only once
        await gw.until(lambda: len(core.records) == 5)


@pytest.mark.parametrize("delay", [90.0, 540.0], ids=["jira-minute-poll", "otrs-9-minutes"])
async def test_a_helpdesk_that_polls_its_mailbox_is_refused_at_the_fourth_round(
    tmp_path: Path, delay: float
) -> None:
    """A helpdesk fetching its mail each minute or every few minutes acknowledges minutes after the
    answer mail: with a minute's window its loop ran on at the poll's pace (7 SMS in 8 minutes)."""
    errors = await rounds(
        tmp_path, [f"Dziekujemy, zgloszenie {100 + i} przyjete" for i in range(5)], delay=delay
    )
    assert errors[:3] == [None, None, None], errors
    assert errors[3] is not None and REFUSED in errors[3], errors


async def test_a_person_saying_ok_to_each_of_the_phones_different_answers_is_not_refused(
    tmp_path: Path,
) -> None:
    """A person answering "OK" at once to each of the phone's answers writes the same words each time
    (digits aside; the same SMS a fourth time in a day is refused by the operator's rule anyway), but
    the phone's answers differ: a conversation, not a loop. Its fourth "OK" was refused as a loop."""
    replies = ["Bede o 15", "Jednak korek, raczej 16", "Jestem pod bramą", "Wjezdzam na rampe", "Gotowe"]
    assert (
        await rounds(tmp_path, [f"OK, czekam do {15 + i}:00" for i in range(5)], replies=replies, delay=20.0)
        == [None] * 5
    )


def otrs(i: int, answered: str) -> str:
    return f"[Ticket#2026120710{4000 + i}] RE: {answered[:24]}..."


def zammad(i: int, answered: str) -> str:
    """Its title is the answer mail's subject, which names the mailbox's last subject: it grows each
    round until the gateway's subject cut makes it the same."""
    return f"Thanks for your inquiry ({answered})"


@pytest.mark.parametrize(("subject", "count"), [(otrs, 4), (zammad, 8)], ids=["otrs", "zammad"])
async def test_an_acknowledgement_that_is_no_plain_reply_is_refused_as_a_loop(
    tmp_path: Path, subject: Callable[[int, str], str], count: int
) -> None:
    """A helpdesk's acknowledgement whose subject is not the answer mail's with "Re:" before it is no
    answer to the conversation (its SMS has the subject too), and the guard was asked only for the
    numbers a mail answers: every round was an SMS. Every number of a mail is asked now."""
    texts = [f"Thank you. Your request has been received as ticket {1000 + i}." for i in range(count)]
    errors = await rounds(tmp_path, texts, subject=subject)
    assert errors[-1] is not None and REFUSED in errors[-1], errors
    assert errors[:-1] == [None] * (count - 1), errors


async def test_a_group_mail_leaves_out_only_the_looping_phone_and_tells_the_sender(tmp_path: Path) -> None:
    """A helpdesk's acknowledgement To the looping phone and Cc an on-call colleague: at the fourth
    round the whole mail was refused 550, the colleague's SMS too. Only the looping phone is left
    out now, as the identical-text rule leaves out its numbers, and the sender is told of it."""
    relay = free_port()
    now = [T0]
    colleague = "601999888"
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay), lambda: now[0]) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Zgloszenie", subject="Serwis"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        phone, ours = core.last_sms()
        for i in range(1, 5):
            now[0] += 5
            command = {"op": "mo", "source": phone, "destination": ours, "text": AUTO_REPLY}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(i)
            now[0] += 2
            answer = parsed(sink.messages[i - 1][2])
            back = answer_to(answer, f"Thank you. Your request has been received as ticket {1000 + i}.")
            back.replace_header("Subject", otrs(i, str(answer["Subject"])))
            result = await gw.send(back, [str(answer["From"]), f"{colleague}@{DOMAIN}"])
            assert result.error is None, (i, result.error)  # the fourth was a 550 for both numbers
            # The colleague gets each round, the fourth too.
            await gw.until(
                lambda i=i: sum(str(r["destination"]).endswith(colleague) for r in core.records) == i
            )
        to_phone = [r for r in core.records if str(r["destination"]).endswith("601123456")]
        assert len(to_phone) == 1 + 3  # the first SMS and three rounds; the fourth left out
        await sink.wait(5)
        told = [parsed(raw) for _f, _to, raw in sink.messages[4:]]
        assert [str(m["Subject"]) for m in told] == [f"Not sent as SMS to +48601123456: {back['Subject']}"]
        words = told[0].get_content()
        assert "sent as SMS to +48601999888, but not to +48601123456: it looks like a mail loop" in words


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", "sent as SMS to +48601999888, but not to +48601123456: it looks like a mail loop"),
        ("pl", "wysłano jako SMS do +48601999888, ale nie do +48601123456: wygląda to na pętlę pocztową"),
    ],
)
def test_the_notice_of_a_looping_phone_left_out_in_each_language(
    tmp_path: Path, lang: str, words: str
) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"language": lang})})
    mail_read = SimpleNamespace(subject="[Ticket#1] RE: Serwis", message_id="<t1@helpdesk.example>")
    sent = ["+48601999888"]
    looped: dict[str, Timing] = {"+48601123456": "timed", "+48601555000": "untimed"}
    told = mailloop.told(cfg, "desk@acme.example", mail_read, sent, looped, {"+48601555000"}, T0)  # type: ignore[arg-type]
    assert [kind for kind, _raw in told] == ["not-sent"]
    notice = parsed(told[0][1])
    assert "+48601123456" in str(notice["Subject"]) and "+48601555000" not in str(notice["Subject"])
    content = " ".join(notice.get_content().split())
    assert words in content
    assert mailloop.TIMING["timed"](lang, quick=15) in content  # only the number named was timed
    assert str(notice["In-Reply-To"]) == "<t1@helpdesk.example>"
    alone = {"+48601555000": looped["+48601555000"]}
    assert mailloop.told(cfg, "desk@acme.example", mail_read, sent, alone, {"+48601555000"}, T0) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lang", "words", "untrue"),
    [
        (
            "en",
            "sent before the SMS's receipt came to time it, so taken for an auto-reply app's",
            "15 seconds",
        ),
        (
            "pl",
            "wysłanej, zanim przyszło potwierdzenie doręczenia SMS-a, które zmierzyłoby czas",
            "15 sekund",
        ),
    ],
)
def test_a_notice_of_answers_no_receipt_timed_claims_no_seconds(
    tmp_path: Path, lang: str, words: str, untrue: str
) -> None:
    """Answers that came before their SMS's receipt are counted fast untimed: the notice said they came
    "within 15 seconds of the SMS", which nobody knew."""
    cfg = make_config(tmp_path, smsc_port=free_port())
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"language": lang})})
    mail_read = SimpleNamespace(subject="[Ticket#1] RE: Serwis", message_id="<t1@helpdesk.example>")
    looped: dict[str, Timing] = {"+48601123456": "untimed"}
    told = mailloop.told(cfg, "desk@acme.example", mail_read, ["+48601999888"], looped, set(), T0)  # type: ignore[arg-type]
    content = " ".join(parsed(told[0][1]).get_content().split())
    assert words in content and untrue not in content


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", "went from you to each of those phones 3 times"),
        ("pl", "trafił do każdego z tych telefonów 3 razy"),
    ],
)
def test_the_notice_of_several_looping_phones_says_so(tmp_path: Path, lang: str, words: str) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"language": lang})})
    mail_read = SimpleNamespace(subject="[Ticket#1] RE: Serwis", message_id="<t1@helpdesk.example>")
    looped: dict[str, Timing] = {"+48601123456": "timed", "+48601555000": "timed"}
    told = mailloop.told(cfg, "desk@acme.example", mail_read, ["+48601999888"], looped, set(), T0)  # type: ignore[arg-type]
    content = " ".join(parsed(told[0][1]).get_content().split())
    assert words in content and "that phone" not in content and "tego telefonu" not in content


async def test_a_retry_of_a_round_that_went_is_a_duplicate_not_a_loop(tmp_path: Path) -> None:
    """The helpdesk's server lost the 250 of its third acknowledgement and sent it again after the
    phone had answered it: counted with its own first copy as a round, the retry was refused 550,
    and the helpdesk's server bounced a mail whose SMS the phone had."""
    relay = free_port()
    now = [T0]
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay), lambda: now[0]) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Zgloszenie", subject="Serwis"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        sent: list[EmailMessage] = []
        for i in range(1, 5):
            now[0] += 5
            command = {"op": "mo", "reply_to_last": True, "text": AUTO_REPLY}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(i)
            now[0] += 2
            if i == 4:
                break  # the phone answered the third round; the helpdesk's server retries it
            back = answer_to(parsed(sink.messages[i - 1][2]), f"Dziekujemy, zgloszenie {100 + i} przyjete")
            back["Message-ID"] = f"<ack{i}@helpdesk.example>"
            back["Date"] = f"Mon, 7 Dec 2026 10:0{i}:00 +0100"
            assert (await gw.send(back)).error is None
            sent.append(back)
            await gw.until(lambda i=i: len(core.records) == 1 + i)
        result = await gw.send(sent[-1])
        assert result.error is None, result.error  # 250 duplicate
        assert gw.store.admin.count_messages() == 4  # the first SMS and three rounds, none again
