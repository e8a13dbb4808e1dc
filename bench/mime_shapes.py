"""CPU a hostile mail shape costs the paths a real mail takes, at 1, 5 and 10 MB and the size limit.

The shapes: a mail of many header fields; a Content-Type of many parameters (plain and quoted); a
Subject, a To and a References of many RFC 2047 encoded words. Each is timed (`time.process_time`)
through `read_mail` (mimefast, mimebody, charsets, subjects, displaynames: what the intake worker
does with the mail of a number) and through what `postmaster.forward` does besides (a headers-only
feed parse and the Subject's decoding). The growth from one size to the next says what is
quadratic (x25 from 1 to 5 MB) and what is linear (x5). A shape the bounds refuse is read in
milliseconds, whatever its size: the `refused` column says with which reply.

Usage: python bench/mime_shapes.py [--sizes 1,5,10] [--shape fields --shape subject-words …]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.smtp.charsets import decode_header  # noqa: E402
from gateway.smtp.intake import IntakeRefused, read_mail  # noqa: E402

LIMIT = 1_048_576  # [smtp] max_message_bytes as shipped
HEAD = b"From: a@example.com\r\nTo: 601123456@sms.example.com\r\nMessage-ID: <x@example.com>\r\n"


def _fill(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


def fields(size: int) -> bytes:
    return HEAD + b"Subject: Hi\r\n" + _fill(b"X-A: 1\r\n", size) + b"\r\nText\r\n"


def params(size: int) -> bytes:
    ctype = b"Content-Type: text/plain; charset=utf-8" + _fill(b";a=1", size)
    return HEAD + b"Subject: Hi\r\n" + ctype + b"\r\n\r\nText\r\n"


def quoted_params(size: int) -> bytes:
    ctype = b"Content-Type: text/plain; charset=utf-8" + _fill(b';a=";"', size)
    return HEAD + b"Subject: Hi\r\n" + ctype + b"\r\n\r\nText\r\n"


def subject_words(size: int) -> bytes:
    return HEAD + b"Subject: " + _fill(b"=?utf-8?q?a?= ", size) + b"\r\n\r\nText\r\n"


def subject_words_split(size: int) -> bytes:  # each word's own charset: no joining of adjacent ones
    words = _fill(b"=?utf-8?q?a?= =?iso-8859-2?q?b?= ", size)
    return HEAD + b"Subject: " + words + b"\r\n\r\nText\r\n"


def to_words(size: int) -> bytes:
    to = b"To: " + _fill(b"=?utf-8?q?a?= ", size) + b"<601123456@sms.example.com>\r\n"
    return b"From: a@example.com\r\nSubject: Hi\r\n" + to + b"\r\nText\r\n"


def to_names(size: int) -> bytes:
    to = b"To: " + _fill(b"=?utf-8?q?a?= <6@sms.example.com>, ", size) + b"<601123456@sms.example.com>\r\n"
    return b"From: a@example.com\r\nSubject: Hi\r\n" + to + b"\r\nText\r\n"


SHAPES: dict[str, Callable[[int], bytes]] = {
    "fields": fields,
    "params": params,
    "quoted-params": quoted_params,
    "subject-words": subject_words,
    "subject-words-split": subject_words_split,
    "to-words": to_words,
    "to-names": to_names,
}


def _intake(raw: bytes) -> str:
    try:
        read_mail(raw)
    except IntakeRefused as exc:
        return exc.reply
    return ""


def _postmaster_extra(raw: bytes) -> str:
    """What `postmaster.forward` does besides `read_mail`: a headers-only parse, the Subject read."""
    head = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    value = next((str(v) for name, v in head.raw_items() if name.lower() == "subject"), "")
    decode_header(value, ("utf-8",))
    return ""


def timed(work: Callable[[bytes], str], raw: bytes) -> tuple[float, str]:
    started = time.process_time()
    said = work(raw)
    return time.process_time() - started, said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,5,10", help="sizes in MB (the size limit is always added)")
    ap.add_argument("--shape", action="append", choices=sorted(SHAPES), help="shapes to time (all)")
    ap.add_argument("--postmaster", action="store_true", help="also time postmaster's own parse")
    args = ap.parse_args()
    sizes = sorted({LIMIT, *(int(float(s) * 1_000_000) for s in args.sizes.split(","))})
    print(f"{'shape':<20} {'bytes':>10} {'read_mail s':>12} {'postmaster s':>13}  refused")
    for name in args.shape or SHAPES:
        for size in sizes:
            raw = SHAPES[name](size)
            seconds, said = timed(_intake, raw)
            extra = f"{timed(_postmaster_extra, raw)[0]:13.3f}" if args.postmaster else f"{'-':>13}"
            print(f"{name:<20} {len(raw):>10} {seconds:12.3f} {extra}  {said[:70]}", flush=True)


if __name__ == "__main__":
    main()
