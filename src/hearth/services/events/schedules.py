"""EventBridge schedule expressions (`rate(...)`, six-field `cron(...)`) and the engine that fires them.

It owns parsing (with AWS's one message, "Parameter ScheduleExpression is not valid."), computing the
next fire time after a moment, and a small engine that sleeps until the earliest due rule and calls
back. It never knows about rules' targets or storage: the caller registers (key, schedule) pairs and
gets `fire(key, scheduled_time)` calls.

Times are UTC, as AWS evaluates cron expressions. The engine reads time from a `Clock`, so tests drive
it with `ManualClock` and never wait for real minutes; `ScaledClock` (HEARTH_TEST_TIME_SCALE) makes a
real server's schedule time run faster for end-to-end tests.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from hearth.aws.errors import AwsError
from hearth.background import BackgroundTask

log = logging.getLogger(__name__)

INVALID = "Parameter ScheduleExpression is not valid."
_MONTHS = {name: i for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                              "NOV", "DEC"), start=1)}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(([^()]*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def invalid_schedule() -> AwsError:
    return AwsError("ValidationException", INVALID)


class Schedule(Protocol):
    @property
    def expression(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, or None when the schedule never fires again."""


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    period: timedelta
    anchor: datetime  # fire times are anchor + k * period (AWS counts from the rule's creation)

    def next_after(self, moment: datetime) -> datetime | None:
        if moment < self.anchor:
            return self.anchor + self.period
        elapsed = (moment - self.anchor) // self.period
        return self.anchor + (elapsed + 1) * self.period


def parse_schedule(expression: str, anchor: datetime | None = None) -> RateSchedule | CronSchedule:
    """Parse `rate(...)` or `cron(...)`; raise AwsError ValidationException with AWS's message."""
    m = _RATE.fullmatch(expression)
    if m:
        value, unit = int(m.group(1)), m.group(2)
        # AWS insists on "1 minute" and "5 minutes": the singular only for 1.
        if value <= 0 or (value == 1) != (not unit.endswith("s")):
            raise invalid_schedule()
        start = (anchor or datetime.now(UTC)).replace(microsecond=0)
        return RateSchedule(expression, timedelta(seconds=value * _UNIT_SECONDS[unit.rstrip("s")]), start)
    m = _CRON.fullmatch(expression)
    if m:
        return CronSchedule.parse(expression, m.group(1))
    raise invalid_schedule()


# -- cron -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _DomRule:
    days: frozenset[int]  # explicit days of month
    last: bool = False  # L
    last_offset: int = 0  # L-3
    weekday_nearest: int | None = None  # 15W
    last_weekday: bool = False  # LW

    def matches(self, d: date) -> bool:
        last_day = calendar.monthrange(d.year, d.month)[1]
        if d.day in self.days:
            return True
        if self.last and d.day == last_day - self.last_offset:
            return True
        if self.weekday_nearest is not None and d.day == _nearest_weekday(d.year, d.month, self.weekday_nearest):
            return True
        return self.last_weekday and d.day == _nearest_weekday(d.year, d.month, last_day)


@dataclass(frozen=True)
class _DowRule:
    days: frozenset[int]  # 1 = Sunday … 7 = Saturday
    last_of: int | None = None  # 5L: the last Thursday of the month
    nth: tuple[int, int] | None = None  # 3#2: the second Tuesday

    def matches(self, d: date) -> bool:
        dow = (d.isoweekday() % 7) + 1  # Monday=1 in isoweekday -> 2 here; Sunday -> 1
        if dow in self.days:
            return True
        last_day = calendar.monthrange(d.year, d.month)[1]
        if self.last_of is not None and dow == self.last_of and d.day + 7 > last_day:
            return True
        return self.nth is not None and dow == self.nth[0] and (d.day - 1) // 7 + 1 == self.nth[1]


def _nearest_weekday(year: int, month: int, day: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    day = min(day, last_day)
    wd = date(year, month, day).weekday()  # Monday=0
    if wd == 5:  # Saturday -> Friday, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if wd == 6:  # Sunday -> Monday, unless that leaves the month
        return day + 1 if day < last_day else day - 2
    return day


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise invalid_schedule()
    return int(text)


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """`*`, `a`, `a-b`, `a/n`, `*/n`, `a-b/n` and comma lists, all within [low, high]."""
    out: set[int] = set()
    for part in field.split(","):
        if not part:
            raise invalid_schedule()
        body, slash, step_text = part.partition("/")
        step = _number(step_text, None) if slash else 1
        if step <= 0:
            raise invalid_schedule()
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = _number(a, names), _number(b, names)
        else:
            start = _number(body, names)
            end = high if slash else start
        if not (low <= start <= high and low <= end <= high):
            raise invalid_schedule()
        if start <= end:
            out.update(range(start, end + 1, step))
        else:  # a wrapping range such as FRI-MON or NOV-FEB
            span = list(range(start, high + 1)) + list(range(low, end + 1))
            out.update(span[::step])
    return frozenset(out)


def _dom(field: str) -> _DomRule:
    if field == "L":
        return _DomRule(frozenset(), last=True)
    if field == "LW":
        return _DomRule(frozenset(), last_weekday=True)
    m = re.fullmatch(r"L-(\d+)", field)
    if m:
        offset = int(m.group(1))
        if offset > 30:
            raise invalid_schedule()
        return _DomRule(frozenset(), last=True, last_offset=offset)
    m = re.fullmatch(r"(\d+)W", field)
    if m:
        day = int(m.group(1))
        if not 1 <= day <= 31:
            raise invalid_schedule()
        return _DomRule(frozenset(), weekday_nearest=day)
    return _DomRule(_values(field, 1, 31))


def _dow(field: str) -> _DowRule:
    if field == "L":
        return _DowRule(frozenset({7}))
    m = re.fullmatch(r"(\w+)L", field)
    if m:
        day = _number(m.group(1), _DAYS)
        if not 1 <= day <= 7:
            raise invalid_schedule()
        return _DowRule(frozenset(), last_of=day)
    m = re.fullmatch(r"(\w+)#(\d)", field)
    if m:
        day, nth = _number(m.group(1), _DAYS), int(m.group(2))
        if not (1 <= day <= 7 and 1 <= nth <= 5):
            raise invalid_schedule()
        return _DowRule(frozenset(), nth=(day, nth))
    return _DowRule(_values(field, 1, 7, _DAYS))


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    dom: _DomRule | None  # None when the field is `?`
    dow: _DowRule | None

    @classmethod
    def parse(cls, expression: str, body: str) -> CronSchedule:
        fields = body.split()
        if len(fields) != 6 or body != body.strip() or "  " in body:
            raise invalid_schedule()
        minute, hour, dom, month, dow, year = fields
        # Exactly one of day-of-month and day-of-week is `?`: AWS refuses both and neither.
        if (dom == "?") == (dow == "?"):
            raise invalid_schedule()
        return cls(
            expression=expression,
            minutes=_values(minute, 0, 59),
            hours=_values(hour, 0, 23),
            months=_values(month, 1, 12, _MONTHS),
            years=_values(year, 1970, 2199),
            dom=None if dom == "?" else _dom(dom),
            dow=None if dow == "?" else _dow(dow),
        )

    def _day_matches(self, d: date) -> bool:
        if d.month not in self.months or d.year not in self.years:
            return False
        if self.dom is not None:
            return self.dom.matches(d)
        return self.dow is not None and self.dow.matches(d)

    def next_after(self, moment: datetime) -> datetime | None:
        moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
        day = moment.date()
        first = True
        last_year = max(self.years)
        while day.year <= last_year:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                first = False
                continue
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                first = False
                continue
            if self._day_matches(day):
                for h in sorted(self.hours):
                    for mi in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, h, mi, tzinfo=UTC)
                        if not first or candidate > moment:
                            return candidate
            day += timedelta(days=1)
            first = False
        return None


# -- clocks and the engine ------------------------------------------------------------------------

class Clock(Protocol):
    def now(self) -> datetime: ...

    def seconds_until(self, moment: datetime) -> float:
        """Real seconds to sleep until the clock shows `moment`."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds())


class ScaledClock:
    """Time that runs `scale` times faster than real time (tests only), from the start of the current UTC
    day: every node of a cluster on one machine shows the same moment, as real clocks do, so a schedule's
    moment is one key cluster-wide (`Membership.fires_schedule`)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        wall = datetime.now(UTC)
        self._origin_mono = time.monotonic()
        day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        self._origin_wall = day + (wall - day) * scale  # the scaled moment at _origin_mono

    def now(self) -> datetime:
        return self._origin_wall + timedelta(seconds=(time.monotonic() - self._origin_mono) * self.scale)

    def seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.scale)

    def monotonic_at(self, moment: datetime) -> float:
        """The `time.monotonic()` reading at which this clock shows `moment`."""
        return self._origin_mono + (moment - self._origin_wall).total_seconds() / self.scale


class ManualClock:
    """A clock that moves only when told (unit tests)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def seconds_until(self, moment: datetime) -> float:
        return 3600.0  # never reached by sleeping: tests call `ScheduleEngine.run_due`

    def advance(self, delta: timedelta) -> None:
        self.current += delta


Fire = Callable[[str, datetime], Awaitable[None]]


class ScheduleEngine:
    """Fires registered schedules at their times. One owner of "what is due when".

    A missed fire time (the server was down, or the loop was late) fires once, not once per missed
    period, as AWS does not replay schedules either.
    """

    def __init__(self, fire: Fire, clock: Clock | None = None) -> None:
        self._fire = fire
        self.clock: Clock = clock or SystemClock()
        self._entries: dict[str, tuple[Schedule, datetime | None]] = {}
        self._wake = asyncio.Event()
        self._loop = BackgroundTask(self._run)

    def set(self, key: str, schedule: Schedule) -> None:
        self._entries[key] = (schedule, schedule.next_after(self.clock.now()))
        self._wake.set()

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)
        self._wake.set()

    def next_fire(self, key: str) -> datetime | None:
        entry = self._entries.get(key)
        return entry[1] if entry else None

    async def run_due(self) -> list[str]:
        """Fire every entry whose time has come (by the clock); return the keys fired."""
        now = self.clock.now()
        fired: list[str] = []
        for key, (schedule, due) in list(self._entries.items()):
            if due is None or due > now:
                continue
            self._entries[key] = (schedule, schedule.next_after(now))
            fired.append(key)
            try:
                await self._fire(key, due)
            except Exception:
                log.exception("scheduled rule %s failed to fire", key)
        return fired

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        while True:
            await self.run_due()
            dues = [due for _, due in self._entries.values() if due is not None]
            delay = min((self.clock.seconds_until(d) for d in dues), default=3600.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 3600.0))
