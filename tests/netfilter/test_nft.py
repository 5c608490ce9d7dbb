from __future__ import annotations

from gatewayd.netfilter.nft import nft_error_summary

BATCH = "add table inet x\nadd chain inet x c\nadd rule inet x c queue num 0 bypass\n"


def test_errors_carry_line_number_message_and_source_line() -> None:
    error = (
        "/tmp/tmpab12.nft:3:19-23: Error: Could not process rule: No such file or directory\n"
        "add rule inet x c queue num 0 bypass\n"
        "                  ^^^^^\n"
    )
    assert nft_error_summary(error, BATCH) == (
        "line 3: Error: Could not process rule: No such file or directory"
        " [add rule inet x c queue num 0 bypass]"
    )


def test_several_errors_are_joined_on_one_line_and_bounded() -> None:
    one = "f.nft:{n}:1-4: Error: bad {n}\nsource\n^^^^\n"
    error = "".join(one.format(n=n) for n in (1, 2, 3, 1))
    summary = nft_error_summary(error, BATCH)
    assert "\n" not in summary
    assert summary.count("Error:") == 3
    assert summary.startswith("line 1: Error: bad 1 [add table inet x]; line 2: Error: bad 2")


def test_error_without_location_keeps_its_text_without_carets() -> None:
    error = "Error: No such file or directory\nlist table inet nope\n^^^^^\n"
    assert nft_error_summary(error, "list table inet nope") == (
        "Error: No such file or directory; list table inet nope"
    )


def test_line_outside_the_batch_is_reported_without_source() -> None:
    assert nft_error_summary("x:99:1-2: Error: odd\n", BATCH) == "line 99: Error: odd"


def test_empty_error_output() -> None:
    assert nft_error_summary("", BATCH) == "failed without a message"
