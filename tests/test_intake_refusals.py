"""What read_mail() refuses, and the promise behind it: a mail with nothing to send gets 554 5.6.0 with
its reason (R-1.6), a bug inside intake becomes a logged refusal, and no byte sequence (random bytes,
damaged corpus mail, hostile nesting) makes it raise anything but IntakeRefused. Split from
test_intake.py by subject (it was over 400 lines)."""

from __future__ import annotations

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import intake
from gateway.smtp.intake import (
    EMPTY_REPLY,
    ONLY_ATTACHMENTS_REPLY,
    ONLY_BELOW_END_REPLY,
    ONLY_QUOTE_REPLY,
    IntakeRefused,
    MailText,
    read_mail,
)
from tests.test_intake import CORPUS, mail, multipart, part

# --- refusals (R-1.6) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reply"),
    [
        (mail("", subject=None), EMPTY_REPLY),
        (mail("  \n\n \t", subject=""), EMPTY_REPLY),
        (mail("> only the old message\n-- \nJan", subject=None), ONLY_QUOTE_REPLY),
        (mail("> only the old message\nEND\nfooter", subject=None), ONLY_QUOTE_REPLY),
        (mail("END\nfooter", subject=None), ONLY_BELOW_END_REPLY),
        (mail("\n  \nEND\nConfidential.\n-- \nJan", subject=""), ONLY_BELOW_END_REPLY),
        (multipart("mixed", part("image/png", "iVBO", "Content-Disposition: attachment\n"), subject=None),
         ONLY_ATTACHMENTS_REPLY),
    ],
    ids=["empty", "blank", "only-quote", "quote-above-end", "only-below-end", "blank-above-end",
         "only-attachment"],
)  # fmt: skip
def test_empty_text_is_refused(raw: bytes, reply: str) -> None:
    # Nothing to send: 554 5.6.0 with the reason, never an empty SMS.
    with pytest.raises(IntakeRefused) as refused:
        read_mail(raw)
    assert refused.value.reply == reply
    assert reply.startswith("554 5.6.0 ")


def test_unexpected_error_becomes_a_refusal_and_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug inside intake never escapes as a raw exception; it is logged for the operator.
    def broken(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(intake, "_body", broken)
    with structlog.testing.capture_logs() as logs, pytest.raises(IntakeRefused) as refused:
        read_mail(mail())
    assert refused.value.reply == "554 5.6.0 Message could not be read: malformed MIME structure"
    assert [(e["event"], e["log_level"]) for e in logs] == [("intake.unreadable", "error")]


# --- never crash on network bytes ----------------------------------------------------------------------


def _read_or_refuse(raw: bytes) -> MailText | None:
    """read_mail turns even a bug into a 554, so a crash shows only as an error-level log event."""
    result: MailText | None = None
    with structlog.testing.capture_logs() as logs:
        try:
            result = read_mail(raw)
        except IntakeRefused as refused:
            assert refused.reply.startswith("554 5.6.0 ")
    crashes = [e for e in logs if e["log_level"] in ("error", "critical") or e.get("exc_info")]
    assert not crashes, f"unexpected exception inside intake: {crashes}"
    return result


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    # Arbitrary DATA: a MailText or IntakeRefused, nothing else.
    _read_or_refuse(raw)


_SAMPLES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml")) if p.stat().st_size < 20_000]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_SAMPLES), st.integers(min_value=0), st.binary(min_size=1, max_size=40))
def test_damaged_corpus_mail_never_raises(raw: bytes, where: int, junk: bytes) -> None:
    # Real mails cut short and with junk spliced in (broken boundaries, encodings) never crash intake.
    cut = where % (len(raw) + 1)
    _read_or_refuse(raw[:cut] + junk + raw[cut : cut + where % 500])


def test_deeply_nested_multipart_is_refused_or_read() -> None:
    # A hostile nesting depth is bounded: the text is read up to a depth limit, deeper structures are
    # refused, and no RecursionError escapes.
    def nested(depth: int) -> bytes:
        levels = "".join(
            f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n' for i in range(depth)
        )
        return mail(
            f"{levels}--b{depth}\nContent-Type: text/plain\n\ndeep\n",
            ctype="multipart/mixed; boundary=b0",
            cte="",
        )

    assert read_mail(nested(10)).text == "Hi: deep"
    # Past the walker's depth limit (100) or the parser's stack (1500) the mail is refused: sending the
    # subject alone would lose the text below the limit without a word.
    for depth in (100, 1500):
        with structlog.testing.capture_logs() as logs, pytest.raises(IntakeRefused) as refused:
            read_mail(nested(depth))
        assert refused.value.reply == "554 5.6.0 Message could not be read: MIME nesting too deep"
        assert [(e["event"], e["log_level"]) for e in logs] == [("intake.too_deep", "info")]  # not a crash


def test_mail_text_is_the_one_validation_makes() -> None:
    # read_mail makes its MailText without pydantic's validation (`intake._mail_text`): the same
    # object, each field's type included, as validating the fields makes. A list given for a tuple
    # field would compare equal to nothing validated and leave the frozen mail unhashable.
    read = 0
    for raw in _SAMPLES:
        try:
            fields = dict(read_mail(raw))
        except IntakeRefused:
            continue
        made, validated = intake._mail_text(**fields), MailText(**fields)
        assert made == validated
        assert [type(v) for v in dict(made).values()] == [type(v) for v in dict(validated).values()]
        assert made.model_fields_set == validated.model_fields_set
        read += 1
    assert read > 10
