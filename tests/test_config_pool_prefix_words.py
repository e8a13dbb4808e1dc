"""check-config on a pool range or a routing prefix written as people write numbers.

`"+48500100300-+48500100399"` was refused as "must be an E.164 number", the A..B range form
unnamed, and `prefixes = ["+48 60"]` as "must look like +48 or +4860", nothing saying the space is
the fault. Each now names the form to write. The shipped config, changed, through the CLI.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_config_checks import EXIT_CONFIG, shipped, smsgw, write


def test_a_dashed_pool_range_a_spaced_number_and_a_spaced_prefix_are_said_with_the_form_to_write(
    tmp_path: Path,
) -> None:
    cases = [
        (
            ("pool = [] ", 'pool = ["+48500100300-+48500100399"] '),
            "pool entry '+48500100300-+48500100399': a range is written with two dots,"
            " +48500100300..+48500100399",
        ),
        (
            ("pool = [] ", 'pool = ["+48500100300 – +48500100399"] '),
            "a range is written with two dots, +48500100300..+48500100399",
        ),
        (
            ("pool = [] ", 'pool = ["+48 500 100 200"] '),
            "pool number '+48 500 100 200' must be written without spaces: +48500100200",
        ),
        (
            ("pool = [] ", 'pool = ["1"] '),
            "pool number '1' must be an E.164 number such as +48500100200, or a range such as"
            " +48500100300..+48500100399",
        ),
        (
            ("prefixes = [] ", 'prefixes = ["+48 60"] '),
            "prefix '+48 60' must be written without spaces: '+4860'",
        ),
    ]
    for change, said in cases:
        res = smsgw("--config", str(write(tmp_path, shipped(change))), "check-config")
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
        assert said in " ".join(res.stderr.split()), (change, res.stderr)
