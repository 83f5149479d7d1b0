"""Schedule expressions (AWS's rate and six-field cron) and the engine, on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hearth.aws.errors import AwsError
from hearth.services.events.schedules import INVALID, ManualClock, ScheduleEngine, parse_schedule

T0 = datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC)  # a Monday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", [
    "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(-1 minutes)", "rate(1 second)", "rate(1 week)",
    "rate(5  minutes)", "rate 5 minutes", "cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(0 12 * *)",
    "cron(60 12 * * ? *)", "cron(0 24 * * ? *)", "cron(0 12 32 * ? *)", "cron(0 12 ? * 8 *)", "cron(0 12 ? 13 * *)",
    "cron(0 12 ? * 2#6 *)", "cron(*/0 * * * ? *)", "cron(0 12 * * ? 1969)", "nonsense", "",
])
def test_invalid_expressions(expr: str) -> None:
    with pytest.raises(AwsError) as info:
        parse_schedule(expr)
    assert (info.value.code, info.value.message) == ("ValidationException", INVALID)


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("rate(1 minute)", T0, T0 + timedelta(minutes=1)),
    ("rate(5 minutes)", T0 + timedelta(minutes=7), T0 + timedelta(minutes=10)),
    ("rate(2 hours)", T0, T0 + timedelta(hours=2)),
    ("rate(1 day)", T0, T0 + timedelta(days=1)),
])
def test_rate_counts_from_the_anchor(expr: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(expr, T0).next_after(after) == expected.replace(microsecond=0)


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("cron(0 12 * * ? *)", "2024-01-01T12:00:30", "2024-01-02T12:00:00"),
    ("cron(15 10 * * ? *)", "2024-01-01T09:00:00", "2024-01-01T10:15:00"),
    ("cron(0/15 * * * ? *)", "2024-01-01T12:01:00", "2024-01-01T12:15:00"),
    ("cron(0 18 ? * MON-FRI *)", "2024-01-05T19:00:00", "2024-01-08T18:00:00"),  # Friday evening -> Monday
    ("cron(0 8 1 * ? *)", "2024-01-15T00:00:00", "2024-02-01T08:00:00"),
    ("cron(0 0 L * ? *)", "2024-02-03T00:00:00", "2024-02-29T00:00:00"),  # leap year
    ("cron(0 0 L-2 * ? *)", "2024-04-01T00:00:00", "2024-04-28T00:00:00"),
    ("cron(0 9 15W * ? *)", "2024-06-01T00:00:00", "2024-06-14T09:00:00"),  # the 15th is a Saturday
    ("cron(0 9 1W * ? *)", "2024-06-01T00:00:00", "2024-06-03T09:00:00"),  # Sat 1st -> Mon 3rd
    ("cron(0 9 LW * ? *)", "2024-08-01T00:00:00", "2024-08-30T09:00:00"),  # Aug 31 2024 is a Saturday
    ("cron(0 10 ? * 6L *)", "2024-01-01T00:00:00", "2024-01-26T10:00:00"),  # the last Friday
    ("cron(0 10 ? * 3#2 *)", "2024-01-01T00:00:00", "2024-01-09T10:00:00"),  # the second Tuesday
    ("cron(0 10 ? * L *)", "2024-01-01T00:00:00", "2024-01-06T10:00:00"),  # Saturday
    ("cron(30 6,18 ? * SUN *)", "2024-01-07T07:00:00", "2024-01-07T18:30:00"),
    ("cron(0 0 1 JAN,JUL ? 2025-2026)", "2024-03-01T00:00:00", "2025-01-01T00:00:00"),
    ("cron(0 0 1 NOV-FEB ? *)", "2024-03-01T00:00:00", "2024-11-01T00:00:00"),
])
def test_cron_next(expr: str, after: str, expected: str) -> None:
    assert parse_schedule(expr).next_after(at(after)) == at(expected)


def test_cron_that_never_fires_again() -> None:
    assert parse_schedule("cron(0 0 1 1 ? 1999)").next_after(at("2024-01-01T00:00:00")) is None


async def test_engine_fires_due_rules_once_per_period_on_a_manual_clock() -> None:
    clock = ManualClock(T0)
    fired: list[tuple[str, datetime]] = []

    async def fire(key: str, moment: datetime) -> None:
        fired.append((key, moment))

    engine = ScheduleEngine(fire, clock)
    engine.set("r1", parse_schedule("rate(1 minute)", T0))
    engine.set("r2", parse_schedule("cron(0 13 * * ? *)"))
    assert await engine.run_due() == []
    clock.advance(timedelta(minutes=1))
    assert await engine.run_due() == ["r1"]
    assert await engine.run_due() == []
    clock.advance(timedelta(hours=1))  # many missed periods fire once, as AWS does not replay them
    assert sorted(await engine.run_due()) == ["r1", "r2"]
    engine.remove("r1")
    clock.advance(timedelta(days=1))
    assert await engine.run_due() == ["r2"]
    assert fired[0] == ("r1", T0.replace(microsecond=0) + timedelta(minutes=1))
    assert fired[2][1] == at("2024-01-01T13:00:00")
