"""CPU the signature rules cost on hostile bodies of numbers and words, at 25, 50 and 100 kB (the most of
a body the intake cuts).

Every mail's body goes through the text rules (`read_mail`, as the intake worker reads a mail), and a
body with a sign-off has each line below it read for contact details and sentences
(`gateway.smtp.numbershapes`, `gateway.smtp.signofftail`). Each shape stands below "Pozdrawiam\\nJan",
as one long line and as many short ones, and is timed (`time.process_time`, the best of three). The
growth from one size to the next says what is quadratic (x4 from 50 to 100 kB) and what is linear
(x2): a phone pattern once took 38-86 s on a 90 kB body.

Usage: python bench/number_shapes.py [--sizes 25,50,100] [--shape groups-of-four …]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.smtp.intake import read_mail  # noqa: E402

HEAD = "From: a@example.com\r\nTo: 601123456@sms.example.com\r\nSubject: x\r\nContent-Type: text/plain\r\n"
# Units repeated to the size: each one a start a pattern may read from to the end of the run.
SHAPES = {
    "twelves": "12 ",  # the run that went quadratic, ended by "1/"
    "groups-of-four": "1234 ",  # a bank account's groups: each is a start after four digits
    "thousands": "000 ",  # an amount's groups: each start may read them all
    "thousands-grosze": "1 000 ",  # the same, with "1 " between
    "hours": "9.00 - ",  # a range's opening at each start
    "years": "2020 - ",
    "dates": "12.11.2026-",
    "named": "nip nr ",  # a name of a number, and the words between it and the number
    "named-digits": "paczka 1 ",
    "currency": "EUR 1 ",
    "pesel": "85010112345 ",  # each run a PESEL to check
    "spaces": "1.1" + " " * 50,
    "slogan": "quality trust ",  # each short paragraph a tagline to read (`gateway.smtp.taglines`)
    "letters-e": "ę" * 30 + " ",  # "\\w+ę" reads a word again from each of its letters
    "letters-am": "a" * 30 + "am ",  # "\\w{3,}am" as well, in the name's paragraph's last line
    "notice": "czynne ",  # a company's notice: each start reads up to 40 characters for its hours
    "company": "ACME Sp. z o.o. ",  # a company's name before its register entries
    "account": "Konto mBank ",  # an account's label, and words before its number
}


def body(unit: str, size: int, *, short_lines: bool) -> bytes:
    """The shape below a sign-off: one line of `size` bytes, or lines of some 80 ending in a full stop
    (each then a sentence to read)."""
    run = unit * max(1, size // len(unit))
    if short_lines:
        per = max(1, 80 // len(unit))
        lines = [unit * per + "1." for _ in range(max(1, size // (len(unit) * per)))]
        text = "\r\n\r\n".join(lines)
    else:
        text = run + "1/"
    return (HEAD + f"\r\nDzien dobry\r\n\r\nPozdrawiam\r\nJan\r\n\r\n{text}\r\n").encode()


def timed(raw: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        read_mail(raw)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="25,50,100", help="body sizes in kB")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="shapes to time (all)")
    args = parser.parse_args()
    sizes = [int(s) * 1000 for s in args.sizes.split(",")]
    print(f"{'shape':<18} {'lines':<6}" + "".join(f"{s // 1000:>9} kB" for s in sizes))
    for name in args.shape or SHAPES:
        for short_lines in (False, True):
            figures = [timed(body(SHAPES[name], size, short_lines=short_lines)) for size in sizes]
            kind = "short" if short_lines else "one"
            print(f"{name:<18} {kind:<6}" + "".join(f"{f * 1000:>9.1f} ms" for f in figures))


if __name__ == "__main__":
    main()
