"""The web interface's pure parts: chart geometry, call volume per local day and hour, language choice,
durations, and where a sign-in may send the browser."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from api.web.charts import nice_ceiling, stacked_bars
from api.web.i18n import Formats, negotiate
from api.web.signin import local_target
from calltracking.stats.call_volume import BucketCount, call_volume
from calltracking.stats.period import Period


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (180, 200), (501, 1000)]
)
def test_the_axis_ends_on_a_round_number(value: float, top: float) -> None:
    assert nice_ceiling(value) == top


def test_bars_stack_bottom_up_and_scale_to_the_axis() -> None:
    chart = stacked_bars(["a", "b"], [("x", [2, 0]), ("y", [3, 10])], width=440, height=232)
    first, second = chart.columns
    assert [s.series for s in first.segments] == ["x", "y"]
    assert first.total == 5 and second.total == 10
    plot = 232 - 8 - 24
    assert second.segments[0].height == pytest.approx(plot)  # 10 of an axis of 10
    x, y = first.segments
    assert x.y + x.height == pytest.approx(chart.baseline)
    assert y.y + y.height == pytest.approx(x.y)  # y sits on x
    assert [s.series for s in second.segments] == ["y"]  # a zero draws nothing


def test_labels_are_thinned_so_they_do_not_overlap() -> None:
    chart = stacked_bars([str(n) for n in range(31)], [("x", [1] * 31)], max_labels=8)
    assert sum(column.show_label for column in chart.columns) <= 8
    assert chart.columns[0].show_label


def test_call_volume_counts_in_the_reports_zone_with_every_day_and_hour() -> None:
    period = Period.parse("2026-10-30", "2026-10-31", "Asia/Vladivostok", date(2026, 11, 1))
    stamp = int(datetime(2026, 10, 30, 14, 45, tzinfo=UTC).timestamp())  # 00:45 on the 31st there
    days, hours = call_volume(
        period,
        [
            BucketCount(stamp, {"inbound_missed": 2, "inbound_answered": 1}),
            BucketCount(stamp + 900, {"outbound_unanswered": 1, "internal": 1}),
        ],
    )
    assert [point.label for point in days] == ["2026-10-30", "2026-10-31"]
    assert days[0].total == 0
    assert days[1].counts == {
        "inbound_answered": 1,
        "inbound_missed": 2,
        "outbound_answered": 0,
        "outbound_unanswered": 1,
        "internal": 1,
    }
    assert len(hours) == 24 and (hours[0].total, hours[1].total) == (3, 2)


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        ("ru", "en-US,en;q=0.9", "ru"),
        (None, "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        (None, "de-DE,de;q=0.9,en;q=0.5", "en"),
        (None, "en;q=0.1, ru;q=0.9", "ru"),
        (None, "xx", "en"),
        ("fr", None, "en"),
        (None, "ru;q=garbage", "en"),
    ],
)
def test_the_language_is_the_users_choice_then_the_browsers_then_the_default(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(cookie, header, "en") == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "—"), (0, "0:00"), (59.6, "1:00"), (3725, "1:02:05"), (-3, "0:00")]
)
def test_durations_read_the_same_in_every_language(seconds: float | None, text: str) -> None:
    assert Formats.duration(seconds) == text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/calls?status=missed", "/ui/calls?status=missed"),
        ("https://evil.example/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui/\\evil", "/ui/"),
        ("/api/v1/calls", "/ui/"),
        ("/ui/\r\nSet-Cookie: x", "/ui/"),
        (None, "/ui/"),
    ],
)
def test_sign_in_only_returns_to_a_page_of_the_interface(target: str | None, expected: str) -> None:
    assert local_target(target) == expected
