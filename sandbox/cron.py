"""Cron schedules as Kubernetes reads them: a port of `github.com/robfig/cron/v3`'s standard parser.

kube-apiserver validates `CronJob.spec.schedule` with `cron.ParseStandard` and the CronJob
controller computes start times with the schedule it returns, so both halves of the sandbox use
this one module: five fields (minute hour day-of-month month day-of-week) with `*`, `?`, ranges,
steps, lists and month/day names; the descriptors `@yearly` `@annually` `@monthly` `@weekly`
`@daily` `@midnight` `@hourly` and `@every <duration>`; an optional `TZ=`/`CRON_TZ=` prefix.
Error messages are robfig's (the API server returns them in its 422 causes). Written here rather
than taken from PyPI because croniter and cronsim accept what robfig refuses (day of week 7,
six fields) and word their errors differently; cron semantics are robfig's: when either
day field is `*` both must match, otherwise either may.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAR = 1 << 63


class CronError(ValueError):
    """A schedule robfig/cron refuses; ``str()`` is its error message."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DOM = _Bounds(1, 31)
MONTHS = _Bounds(
    1,
    12,
    {
        m: i + 1
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        )
    },
)
DOW = _Bounds(0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})


def _bits(low: int, high: int, step: int) -> int:
    return sum(1 << i for i in range(low, high + 1, step))


def _all(bounds: _Bounds) -> int:
    return _bits(bounds.low, bounds.high, 1) | STAR


def _atoi(expr: str) -> int:
    """Go's `strconv.Atoi` with robfig's wording around it."""
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    number = int(expr)
    if not -(2**63) <= number < 2**63:
        raise CronError(
            f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range'
        )
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {expr}")
    return number


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _atoi(expr)


def _range(expr: str, bounds: _Bounds) -> int:
    """robfig's `getRange`: `*`, `N`, `N-M`, each with an optional `/step`."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = bounds.low, bounds.high, STAR
    else:
        start = _int_or_name(low_high[0], bounds.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], bounds.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:
            end = bounds.high
        if step > 1:
            extra = 0
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise CronError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _field(text: str, bounds: _Bounds) -> int:
    bits = 0
    for expr in (part for part in text.split(",") if part):
        bits |= _range(expr, bounds)
    return bits


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """Go's `time.ParseDuration` (seconds), for `@every`."""
    match = re.fullmatch(r"([+-]?)((?:[0-9]*\.?[0-9]+(?:ns|us|µs|μs|ms|s|m|h))+|0)", text)
    if not match:
        if re.fullmatch(r"[+-]?[0-9]*\.?[0-9]+", text):
            raise ValueError(f'time: missing unit in duration "{text}"')
        raise ValueError(f'time: invalid duration "{text}"')
    total = sum(
        float(num) * _DURATION_UNITS[unit]
        for num, unit in re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)", match.group(2))
    )
    return -total if match.group(1) == "-" else total


def load_location(name: str) -> tzinfo:
    """Go's `time.LoadLocation` ("" and "UTC" are UTC); raises CronError("unknown time zone X")."""
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: bit sets per field (`SpecSchedule`) or a fixed period (`@every`)."""

    minute: int = 0
    hour: int = 0
    dom: int = 0
    month: int = 0
    dow: int = 0
    location: tzinfo = UTC
    every: float = 0.0

    def next(self, after: datetime) -> datetime | None:
        """The first activation strictly after ``after`` (whole seconds), or None if there is
        none within five years (robfig's `Next` returning the zero time)."""
        if self.every:
            period = max(1, int(self.every))
            base = after.replace(microsecond=0)
            return base + timedelta(seconds=period)
        local = after.astimezone(self.location).replace(second=0, microsecond=0) + timedelta(minutes=1)
        wall = local.replace(tzinfo=None)
        limit = wall.year + 5
        while wall.year <= limit:
            if not self.month >> wall.month & 1:
                wall = (wall.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(wall):
                wall = wall.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if not self.hour >> wall.hour & 1:
                wall = wall.replace(minute=0) + timedelta(hours=1)
                continue
            if not self.minute >> wall.minute & 1:
                wall += timedelta(minutes=1)
                continue
            return wall.replace(tzinfo=self.location).astimezone(after.tzinfo or UTC)
        return None

    def _day_matches(self, wall: datetime) -> bool:
        dom_match = bool(self.dom >> wall.day & 1)
        dow_match = bool(self.dow >> ((wall.weekday() + 1) % 7) & 1)
        if self.dom & STAR or self.dow & STAR:
            return dom_match and dow_match
        return dom_match or dow_match


def _descriptor(spec: str, location: tzinfo) -> Schedule:
    every = "@every "
    if spec.startswith(every):
        try:
            seconds = parse_go_duration(spec[len(every) :])
        except ValueError as exc:
            raise CronError(f"failed to parse duration {spec}: {exc}") from None
        return Schedule(every=max(seconds, 1.0), location=location)
    one = {"minute": 1 << 0, "hour": 1 << 0, "dom": 1 << 1, "month": 1 << 1, "dow": 1 << 0}
    table = {
        "@yearly": ("minute", "hour", "dom", "month"),
        "@annually": ("minute", "hour", "dom", "month"),
        "@monthly": ("minute", "hour", "dom"),
        "@weekly": ("minute", "hour", "dow"),
        "@daily": ("minute", "hour"),
        "@midnight": ("minute", "hour"),
        "@hourly": ("minute",),
    }
    if spec not in table:
        raise CronError(f"unrecognized descriptor: {spec}")
    fixed = table[spec]
    full = {
        "minute": _all(MINUTES),
        "hour": _all(HOURS),
        "dom": _all(DOM),
        "month": _all(MONTHS),
        "dow": _all(DOW),
    }
    return Schedule(location=location, **{k: one[k] if k in fixed else full[k] for k in full})


def parse_standard(spec: str) -> Schedule:
    """robfig's `cron.ParseStandard`; raises CronError with its message."""
    if not spec:
        raise CronError("empty spec string")
    location: tzinfo = UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.find("=") + 1 : space if space >= 0 else len(spec) - 1]
        try:
            location = load_location(name)
        except CronError as exc:
            raise CronError(f"provided bad location {name}: {exc}") from None
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        return _descriptor(spec, location)
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return Schedule(
        minute=_field(fields[0], MINUTES),
        hour=_field(fields[1], HOURS),
        dom=_field(fields[2], DOM),
        month=_field(fields[3], MONTHS),
        dow=_field(fields[4], DOW),
        location=location,
    )
