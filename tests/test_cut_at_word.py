"""A text cut at the part limit ends at a word (R-1.4), and the notice quotes from a whole word (R-1.5).

Past max_parts the part count is fixed, so ending the last part at its last whitespace costs no part;
the phone shows that end, and the sender reads what was cut off from a word it can find in its mail.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from smsc.encoding import Coding, plan
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

# 3 + 230 * 9 characters: ten greedy 153-septet parts would end in "word0168 wor".
CONCAT = "Hi " + " ".join(f"word{i:04d}" for i in range(230))
# 3 + 250 * 8 characters: ten greedy 160-character SMS would each end in "sep00".
SEPARATE = "Hi " + " ".join(f"sep{i:04d}" for i in range(250))


def whole_word_cut(text: str, sent: str, dropped: str) -> bool:
    """The sent text and what was dropped are the text, split between two words."""
    return text == sent + dropped and (sent[-1].isspace() or dropped[0].isspace())


def test_concatenated_cut_ends_at_the_last_word_of_the_last_part() -> None:
    p = plan(CONCAT)
    assert len(p.parts) == 10 and p.truncated and p.concatenated
    assert whole_word_cut(CONCAT, p.text, p.dropped)
    assert p.parts[-1].text.endswith("word0168 ") and p.dropped.startswith("word0169 word0170")
    assert "".join(part.text for part in p.parts) == p.text
    # A last part without whitespace is cut as before: there is no word to end at.
    assert len(plan("a " + "x" * 2000).text) == 1530
    # A cut that already falls after a space loses no word (1530 = 255 * 6).
    kept = plan(" ".join(f"w{i:04d}" for i in range(400)))
    assert len(kept.text) == 1530 and kept.dropped.startswith("w0255 ")


def test_separate_cut_ends_every_sms_at_a_word() -> None:
    p = plan(SEPARATE, mode="separate")
    assert len(p.parts) == 10 and p.truncated and not p.concatenated
    assert all(part.text.endswith(" ") for part in p.parts), [part.text[-6:] for part in p.parts]
    assert all(part.units <= 160 for part in p.parts)
    assert whole_word_cut(SEPARATE, p.text, p.dropped) and p.dropped.startswith("sep0")


def test_ucs2_cut_ends_at_a_word_and_keeps_the_emoji_whole() -> None:
    texts = {"concatenated": "Żółw 😀 pędzi " * 100, "separate": "Zażółć gęślą jaźń 😀 okay " * 60}
    for mode, text in texts.items():
        p = plan(text, mode=mode)  # type: ignore[arg-type]
        assert p.coding is Coding.UCS2 and len(p.parts) == 10
        assert whole_word_cut(text, p.text, p.dropped)
        assert not any(
            "\ud800" <= ch <= "\udfff" for part in p.parts for ch in part.payload.decode("utf-16-be")
        )


def test_escape_pairs_stay_whole_at_a_word_cut() -> None:
    text = " ".join(f"{{€{i:03d}}}" for i in range(300))  # every character but digits and space costs 2
    p = plan(text)
    assert p.coding is Coding.GSM7 and len(p.parts) == 10
    assert whole_word_cut(text, p.text, p.dropped) and p.dropped.startswith("{€")
    for part in p.parts:
        assert part.units <= 153 and not part.payload.endswith(b"\x1b")


async def test_the_notice_quotes_the_cut_text_from_a_whole_word(tmp_path: Path) -> None:
    # Through real SMTP: the phone's last part ends at a word, and the notice starts the quote there.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            await gw.send(mail(f"601123456@{DOMAIN}", CONCAT))
            await smsc.wait_for(10)
            ordered = sorted(smsc.received, key=lambda s: s.udh[-1])
            assert ordered[-1].text.endswith("word0168 ")
            await sink.wait(1)
            notice = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
            assert "shortened" in str(notice["Subject"])
            content = notice.get_body().get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
            assert "\n\nword0169 word0170 " in content


def test_a_word_longer_than_the_cut_may_move_keeps_what_fits_of_it() -> None:
    # "Thank you, your vote counts! " and a 200-character link: moving the cut back to the space
    # would have sent 29 characters of a 160-character SMS and dropped the whole link.
    text = "Thank you, your vote counts! " + "x" * 200
    p = plan(text, max_parts=1)
    assert len(p.parts) == 1 and p.text == text[:160]
