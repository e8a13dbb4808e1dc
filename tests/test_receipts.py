"""Delivery receipt parsing: the text forms seen in the wild, TLVs first, and never an exception."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smsc.base import ReportStatus
from smsc.receipts import (
    classify_stat,
    parse_receipt,
    parse_receipt_date,
    parse_receipt_text,
    read_fields,
    strptime_date,
)
from smsc.smpp.link import normalise_message_id

STANDARD = b" ".join(
    [
        b"id:0012345 sub:001 dlvrd:001",
        b"submit date:2511201430 done date:2511201431",
        b"stat:DELIVRD err:000 text:Hello",
    ]
)


def strip(raw: str) -> str:
    return normalise_message_id(raw, "as_is", receipt=True)


def parse(short_message: bytes | None, tlvs: Mapping[str, object] | None = None):  # type: ignore[no-untyped-def]
    return parse_receipt(short_message=short_message, tlvs=tlvs or {}, normalise=strip)


@pytest.mark.parametrize(
    ("text", "message_id", "status", "error"),
    [
        # The SMPP 3.4 appendix B example, leading zeros stripped from the id.
        (STANDARD, "12345", ReportStatus.DELIVERED, None),
        # Capital "Text:" and 12-digit dates.
        (
            b"id:77 sub:001 dlvrd:001 submit date:251120143000 done date:251120143105 "
            b"stat:DELIVRD err:000 Text:x",
            "77",
            ReportStatus.DELIVERED,
            None,
        ),
        # sub and dlvrd missing, hex id with capitals (ids compare lower-case).
        (b"id:A1B2C3 submit date:2511201430 done date:2511201431 stat:UNDELIV err:001", "a1b2c3",
         ReportStatus.FAILED, "UNDELIV err:001"),
        # Fields on separate lines.
        (b"id:9\r\nsub:001\r\ndlvrd:000\r\nstat:EXPIRED\r\nerr:027\r\ntext:", "9", ReportStatus.FAILED,
         "EXPIRED err:027"),
        # Intermediate states change nothing.
        (b"id:5 stat:ENROUTE err:000", "5", ReportStatus.PENDING, None),
        (b"id:5 stat:ACCEPTD err:000", "5", ReportStatus.PENDING, None),
        (b"id:5 stat:BUFFRED err:000", "5", ReportStatus.PENDING, None),
        (b"id:5 stat:ACKED", "5", ReportStatus.PENDING, None),
        # Every other stat, known or not, is a failure.
        (b"id:5 stat:DELETED err:000", "5", ReportStatus.FAILED, "DELETED err:000"),
        (b"id:5 stat:UNKNOWN err:000", "5", ReportStatus.FAILED, "UNKNOWN err:000"),
        (b"id:5 stat:REJECTD err:000", "5", ReportStatus.FAILED, "REJECTD err:000"),
        (b"id:5 stat:NOSUCHSTATE", "5", ReportStatus.FAILED, "NOSUCHSTATE"),
        # Lower-case stat words and numeric stats.
        (b"id:5 stat:delivrd", "5", ReportStatus.DELIVERED, None),
        (b"id:5 stat:2", "5", ReportStatus.DELIVERED, None),
        (b"id:5 stat:6", "5", ReportStatus.PENDING, None),
        # The free text comes last and may look like fields: it must not override them.
        (b"id:5 stat:UNDELIV err:001 text:id:999 stat:DELIVRD", "5", ReportStatus.FAILED, "UNDELIV err:001"),
        # An id of zeros is still an id.
        (b"id:000 stat:DELIVRD", "0", ReportStatus.DELIVERED, None),
    ],
)  # fmt: skip
def test_receipt_text_forms(text: bytes, message_id: str, status: ReportStatus, error: str | None) -> None:
    # Each field is read on its own, whatever the vendor's order, case, dates or line breaks.
    report = parse(text)
    assert report is not None
    assert (report.message_id, report.status, report.error) == (message_id, status, error)
    # kept as read but for the SMSC's quote of the SMS, which `smsgw phone forget` must not see come back
    assert report.raw == re.sub(r"(?i)(text:).*", r"\1", text.decode().strip())


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"hello, how are you?",
        b"stat:DELIVRD err:000",
        b"id:123 sub:001 dlvrd:001",
        b"\xff\xfe\x00garbage",
    ],
)
def test_not_a_receipt_gives_none(text: bytes) -> None:
    # Without both a message id and a state there is nothing to record.
    assert parse(text) is None
    assert parse(None) is None


@pytest.mark.parametrize(
    ("state", "status", "word"),
    [
        (1, ReportStatus.PENDING, "ENROUTE"),
        (2, ReportStatus.DELIVERED, "DELIVRD"),
        (3, ReportStatus.FAILED, "EXPIRED"),
        (4, ReportStatus.FAILED, "DELETED"),
        (5, ReportStatus.FAILED, "UNDELIV"),
        (6, ReportStatus.PENDING, "ACCEPTD"),
        (7, ReportStatus.FAILED, "UNKNOWN"),
        (8, ReportStatus.FAILED, "REJECTD"),
    ],
)
def test_tlvs_alone_make_a_receipt(state: int, status: ReportStatus, word: str) -> None:
    # receipted_message_id and message_state suffice; smpplib hands the id over as NUL-ended bytes.
    report = parse(b"", {"receipted_message_id": b"00ab\x00", "message_state": state})
    assert report is not None
    assert (report.message_id, report.status) == ("ab", status)
    assert word in report.raw
    if status is ReportStatus.FAILED:
        assert report.error == word


EMPTY_STAT = b"id:X1 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat: err:000 text:"


@pytest.mark.parametrize(
    "text",
    [
        EMPTY_STAT,
        b"id:X1 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:\r\nerr:000 text:",
        b"id:X1 stat:  err:000",
        b"id:X1 err:000 stat:",
        b"id: sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:DELIVRD err:000 text:",
        b"id: stat:DELIVRD",
        b"id:  submit date:2511201430 done date:2511201431 stat:UNDELIV err:001",
    ],
)
def test_an_empty_field_is_not_read_as_the_next_field(text: bytes) -> None:
    # `stat: err:000` read "err" as the state: the message failed with "ERR err:000" and its sender
    # was told so, though the SMSC said nothing of its state. `id: sub:001` was matched as "sub:001".
    # An empty stat or id is one the receipt does not give, as when the field is missing altogether.
    fields = read_fields(text.decode())
    assert fields.get("stat", "DELIVRD") in ("DELIVRD", "UNDELIV") and fields.get("id", "X1") == "X1"
    assert parse(text) is None


def test_an_empty_stat_or_id_leaves_the_tlvs_to_say_them() -> None:
    # The message_state and receipted_message_id TLVs still make a receipt of it.
    report = parse(EMPTY_STAT, {"message_state": 2})
    assert report is not None and (report.message_id, report.status) == ("x1", ReportStatus.DELIVERED)
    report = parse(b"id: stat:UNDELIV err:001", {"receipted_message_id": b"7f\x00"})
    assert report is not None and (report.message_id, report.status) == ("7f", ReportStatus.FAILED)
    assert report.error == "UNDELIV err:001"


def test_tlvs_win_over_the_text() -> None:
    # When TLVs and text disagree, the TLVs are the source of truth.
    report = parse(b"id:111 stat:DELIVRD err:000", {"receipted_message_id": "222", "message_state": 5})
    assert report is not None
    assert (report.message_id, report.status) == ("222", ReportStatus.FAILED)
    assert report.error == "UNDELIV err:000"


def test_network_error_code_is_reported() -> None:
    # The 3-octet network_error_code (type + u16) ends up in the error text of a failure.
    report = parse(b"id:1 stat:UNDELIV err:001", {"network_error_code": b"\x03\x00\x22"})
    assert report is not None and report.error == "UNDELIV err:001 net:3:34"


def test_done_date_becomes_a_utc_datetime() -> None:
    # Receipts carry no zone; the done date is read as UTC, with or without seconds.
    report = parse(STANDARD)
    assert report is not None and report.done_at == datetime(2025, 11, 20, 14, 31, tzinfo=UTC)
    assert parse_receipt_date("251120143105") == datetime(2025, 11, 20, 14, 31, 5, tzinfo=UTC)
    assert parse_receipt_date("2513991431") is None  # month 13
    assert parse_receipt_date("123") is None


def test_normalise_is_applied_to_the_id() -> None:
    # The link's message-id normalisation (e.g. hex ids) is the receipt's key too.
    report = parse_receipt(short_message=b"id:ff stat:DELIVRD", tlvs={}, normalise=lambda s: str(int(s, 16)))
    assert report is not None and report.message_id == "255"


def test_a_failing_normaliser_does_not_raise() -> None:
    # Whatever goes wrong inside, the answer is None, never an exception into the link's reader.
    def boom(raw: str) -> str:
        raise ValueError(raw)

    assert parse_receipt(short_message=STANDARD, tlvs={}, normalise=boom) is None


@given(
    st.binary(max_size=300), st.one_of(st.none(), st.integers(), st.binary(max_size=5), st.text(max_size=5))
)
def test_any_bytes_and_tlvs_never_raise(data: bytes, tlv: object) -> None:
    # Network bytes may be anything: the parser answers a report or None.
    result = parse_receipt(
        short_message=data,
        tlvs={"receipted_message_id": tlv, "message_state": tlv, "network_error_code": tlv},
        normalise=strip,
    )
    assert result is None or result.message_id


def test_classify_stat_table() -> None:
    # Kannel's mapping: only DELIVRD is success, the intermediate words are pending, the rest failure.
    assert classify_stat(" delivrd ") is ReportStatus.DELIVERED
    assert {classify_stat(w) for w in ("ENROUTE", "ACCEPTD", "BUFFRED", "ACKED", "1", "6")} == {
        ReportStatus.PENDING
    }
    assert {classify_stat(w) for w in ("EXPIRED", "DELETED", "UNDELIV", "UNKNOWN", "REJECTD", "x")} == {
        ReportStatus.FAILED
    }


# --- the standard-layout fast path reads what the field-by-field reading reads ----------------------

_ALNUM = "0123456789abcdefABCDEFxyzXYZ"
_VALUE = st.text(alphabet=_ALNUM + " _:-;,\r\n\t٣", min_size=0, max_size=14)
_DIGITS = st.text(alphabet="0123456789", min_size=8, max_size=14)


@st.composite
def standard_like(draw: st.DrawFn) -> str:
    """The appendix-B layout, its values sometimes perturbed so that it stops being standard."""
    part = lambda s: draw(st.one_of(s, _VALUE))  # noqa: E731
    text = (
        f"id:{part(st.text(alphabet=_ALNUM, min_size=1, max_size=20))} sub:{part(st.just('001'))}"
        f" dlvrd:{part(st.just('001'))} submit date:{part(_DIGITS)} done date:{part(_DIGITS)}"
        f" stat:{part(st.sampled_from(['DELIVRD', 'UNDELIV', 'EXPIRED', 'delivrd', 'ENROUTE', 'X_1']))}"
        f" err:{part(st.sampled_from(['000', '001', '0A2']))}"
    )
    tail = draw(st.one_of(st.none(), st.text(max_size=40), st.just("stat:DELIVRD id:9 text:x")))
    text = text if tail is None else f"{text} text:{tail}"
    if draw(st.booleans()):  # upper case keys, a doubled space, a cut: layouts only the full reading takes
        text = draw(st.sampled_from([text.upper(), text.replace(" ", "  ", 1), text[: len(text) // 2]]))
    return text


@given(standard_like())
def test_fast_path_reads_what_the_full_reading_reads(text: str) -> None:
    assert parse_receipt_text(text) == read_fields(text)


@pytest.mark.parametrize(
    "text",
    [
        STANDARD.decode("latin-1"),
        "id:77 sub:001 dlvrd:001 submit date:251120143000 done date:251120143105 stat:DELIVRD err:000 text:",
        "id:A1B2C3 sub:001 dlvrd:000 submit date:2511201430 done date:2511201431 stat:UNDELIV err:001",
        "id:5 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:UNDELIV err:001"
        " text:id:9 stat:X",
        "id:5 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:UNDELIV err:001 text:a\r\nb",
        "id:5 sub:001 dlvrd:001 submit date:25112014300 done date:2511201431 stat:DELIVRD err:000 text:",
        "id:5 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:DELIVRD err:000 text",
        "id:5-sub:9 sub:001 dlvrd:001 submit date:2511201430 done date:2511201431 stat:DELIVRD err:000",
    ],
)
def test_fast_path_examples(text: str) -> None:
    assert parse_receipt_text(text) == read_fields(text)


@given(st.text(alphabet="0123456789", min_size=10, max_size=12) | st.text(alphabet="0123٣²", max_size=12))
@example("00010٣000000")  # an Arabic-Indic 3 in the day: int() takes it, strptime does not
def test_receipt_dates_read_as_strptime_reads_them(value: str) -> None:
    expected = strptime_date(value) if value.isdigit() and len(value) in (10, 12) else None
    assert parse_receipt_date(value) == expected


@pytest.mark.parametrize(
    "value",
    ["2511201430", "251120143059", "6912312359", "6801010000", "0002290000", "0102290000", "2513011200",
     "2500011200", "2511311200", "2511202400", "2511201260", "251120120060", "251120120061", "9912312359"],
)  # fmt: skip
def test_receipt_date_edges(value: str) -> None:
    assert parse_receipt_date(value) == strptime_date(value)


def test_the_simulators_receipts_take_the_fast_path() -> None:
    from smsc.receipts import _STANDARD_RE
    from smsc.simulator.smpp_texts import receipt_text

    now = datetime(2025, 11, 20, 14, 30, tzinfo=UTC)
    for status in ReportStatus:
        assert _STANDARD_RE.fullmatch(receipt_text("1a2b3c", status, now, now))


def test_a_receipt_the_parser_cannot_read_logs_one_line_a_second_not_one_per_pdu() -> None:
    # An SMSC whose ids the link cannot key (here: a normaliser that raises) sends that receipt
    # for every SMS: 300 receipts made 300 warnings.
    from structlog.testing import capture_logs

    class UnkeyableId(ValueError):
        """A kind of failure of this test's own: the throttle is the process's, and another test's
        unparseable receipt within the last second would hold this one's first line back."""

    def refuse(value: str) -> str:
        raise UnkeyableId(f"no such id {value!r}")

    with capture_logs() as logs:
        for n in range(300):
            assert (
                parse_receipt(short_message=f"id:{n} stat:DELIVRD".encode(), tlvs={}, normalise=refuse)
                is None
            )
    lines = [e for e in logs if e["event"] == "receipt.unparseable"]
    assert 1 <= len(lines) <= 2, len(lines)
