"""The call log writes pending calls in batches of a few fixed sizes, so the drivers' prepared-statement
caches hold a dozen multi-row statements, not one per backlog length."""

from __future__ import annotations

from calltracking.calls.log import batch_size


def test_batch_size_backlog_is_written_in_powers_of_two_up_to_the_limit() -> None:
    sizes = []
    pending = 1_234
    while pending:
        size = batch_size(pending, 500)
        sizes.append(size)
        pending -= size

    assert sizes == [500, 500, 128, 64, 32, 8, 2]


def test_batch_size_any_backlog_uses_few_distinct_sizes() -> None:
    assert {batch_size(pending, 500) for pending in range(1, 5_000)} == {1 << k for k in range(9)} | {500}
