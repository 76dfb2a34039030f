"""Cron expressions: Unix (Vixie) cron, evaluated in UTC at second resolution.

Dialect (PROTOCOL.md §0.1 item 1)
---------------------------------
``min hour dom month dow``, or ``sec min hour dom month dow`` (a 5-field expression
has seconds ``0``).  Each field is a comma list of terms; a term is ``*``, ``N``,
``N-M``, optionally followed by ``/STEP``; ``N/STEP`` means "from N to the end of the
field every STEP".  Months take ``JAN``-``DEC`` and days of week ``SUN``-``SAT``
(any case); day of week is 0-7 with 0 and 7 both Sunday.  ``@yearly @annually
@monthly @weekly @daily @midnight @hourly`` stand for their 5-field forms.  Anything
else (``L``, ``W``, ``#``, ``?``, ``H``, ``@reboot``, out-of-range values, reversed
ranges, zero steps, empty terms, wrong field counts) is `InvalidCron`.

The day rule is Vixie's: a field whose text starts with ``*`` is "unrestricted" (so
``*/2`` counts as ``*`` here, exactly as Vixie's DOM_STAR/DOW_STAR flags); when
neither dom nor dow is unrestricted a day matches if EITHER matches, otherwise
both must (which, with one of them ``*``, means the other alone decides).

Theory of operation
-------------------
`Cron.parse` expands every field into its sorted set of values once; the result is
a frozen value, so callers may cache it per expression.  `Cron.next_after` starts
one second after the given instant (truncated to whole seconds) and walks the
calendar coarsest field first: jump to the next allowed month, then to the next
matching day within it, then to the first allowed time of day at or after the
current one (a bisect per field), falling through to the next day or month when a
level is exhausted.  Each step moves forward at least one day or lands on the
answer, so a call costs at most about one iteration per day of the horizon and
usually a handful.  No occurrence within `HORIZON_DAYS` gives ``None``: the engine
rejects such an expression (``0 0 30 2 *``) with 400 ``Invalid cron expression``.

Why not a library
-----------------
The project prefers libraries, so the two candidates were checked:

* croniter treats ``*/2`` in dom/dow as restricted (OR rule, unlike Vixie), puts a
  6th field at the END (seconds) unless told otherwise, accepts ``L W # ? H``,
  imports ``time`` (its default start is the clock) and computes with floats.
* cronsim follows Debian cron closely and reads the clock nowhere, but accepts the
  ``L LW # nL`` extensions, has no ``@`` shorthands, expands ``5-5/2`` as
  ``5,7,9,...`` instead of ``5``, and re-parses at every construction.

Wrapping either would need a second parser in front to reject its extensions and
fix its quirks, which is most of this module anyway.  The tests compare this module
with a brute-force reference and with cronsim on the subset where cronsim is exact.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date

__all__ = ["HORIZON_DAYS", "Cron", "InvalidCron"]

# "Within 5 years": five 365-day years plus the two leap days they can contain.
HORIZON_DAYS = 5 * 365 + 2

_DAY_S = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Instants we can walk without leaving datetime.date's years 1..9999 (horizon included).
_MIN_S = (date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY_S
_MAX_S = (date(9993, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY_S

_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DAY_NAMES = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_NO_NAMES: dict[str, int] = {}

_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DIGITS = frozenset("0123456789")


class InvalidCron(ValueError):
    """Invalid cron expression."""


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _FieldSpec("second", 0, 59, _NO_NAMES),
    _FieldSpec("minute", 0, 59, _NO_NAMES),
    _FieldSpec("hour", 0, 23, _NO_NAMES),
    _FieldSpec("day-of-month", 1, 31, _NO_NAMES),
    _FieldSpec("month", 1, 12, _MONTH_NAMES),
    _FieldSpec("day-of-week", 0, 7, _DAY_NAMES),
)


def _value(text: str, spec: _FieldSpec) -> int:
    if text and set(text) <= _DIGITS:
        # Long digit strings are out of range anyway; int() of thousands of digits raises.
        value = int(text) if len(text) <= 9 else spec.high + 1
    elif text.upper() in spec.names:
        value = spec.names[text.upper()]
    else:
        raise InvalidCron(f"{spec.name}: {text!r} is not a number or name")
    if not spec.low <= value <= spec.high:
        raise InvalidCron(f"{spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _term(text: str, spec: _FieldSpec) -> range:
    base, slash, step_text = text.partition("/")
    step = 1
    if slash:
        if not step_text or not set(step_text) <= _DIGITS or len(step_text) > 9:
            raise InvalidCron(f"{spec.name}: bad step in {text!r}")
        step = int(step_text)
        if step == 0:
            raise InvalidCron(f"{spec.name}: step must be positive in {text!r}")
    if base == "*":
        return range(spec.low, spec.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    first = _value(first_text, spec)
    if dash:
        last = _value(last_text, spec)
        if last < first:
            raise InvalidCron(f"{spec.name}: reversed range {base!r}")
    else:
        # "N/STEP" runs to the end of the field (cronie/Debian); plain "N" is just N.
        last = spec.high if slash else first
    return range(first, last + 1, step)


def _field(text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for term in text.split(","):
        if not term:
            raise InvalidCron(f"{spec.name}: empty term in {text!r}")
        values.update(_term(term, spec))
    return frozenset(values)


def _first_at_or_after(values: tuple[int, ...], value: int) -> int | None:
    i = bisect_left(values, value)
    return values[i] if i < len(values) else None


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_length(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression: the allowed values of each field, expanded."""

    expr: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]  # day of month, 1-31
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0-6, Sunday = 0 (7 folded into 0)
    day_or: bool  # Vixie: dom and dow both restricted -> a day matches either

    @classmethod
    def parse(cls, expr: str) -> Cron:
        """Parse `expr`; raise `InvalidCron` saying what is wrong."""
        text = expr.strip()
        if text.startswith("@"):
            if text.lower() not in _SHORTHANDS:
                raise InvalidCron(f"unknown shorthand {text!r}")
            text = _SHORTHANDS[text.lower()]
        fields = text.split()
        if len(fields) == 5:
            fields.insert(0, "0")
        if len(fields) != 6:
            raise InvalidCron(f"expected 5 or 6 fields, got {len(fields)}")
        sec, minute, hour, dom, month, dow = (
            _field(field, spec) for field, spec in zip(fields, _FIELDS, strict=True)
        )
        return cls(
            expr=expr,
            seconds=tuple(sorted(sec)),
            minutes=tuple(sorted(minute)),
            hours=tuple(sorted(hour)),
            days=dom,
            months=tuple(sorted(month)),
            weekdays=frozenset(d % 7 for d in dow),
            day_or=not (fields[3].startswith("*") or fields[5].startswith("*")),
        )

    def next_after(self, ms: int) -> int | None:
        """The first occurrence strictly after `ms` (epoch ms, UTC, truncated to whole
        seconds), in epoch ms; ``None`` if there is none within `HORIZON_DAYS`."""
        start = ms // 1000 + 1
        if not _MIN_S <= start <= _MAX_S:
            return None
        limit = start - 1 + HORIZON_DAYS * _DAY_S
        today = date.fromordinal(_EPOCH_ORDINAL + start // _DAY_S)
        year, month, day = today.year, today.month, today.day
        time_of_day = start % _DAY_S  # the earliest time still allowed on `day`
        while True:
            if month not in self.months:
                nxt = _first_at_or_after(self.months, month + 1)
                year, month = (year, nxt) if nxt is not None else (year + 1, self.months[0])
                day, time_of_day = 1, 0
            first_ordinal = date(year, month, 1).toordinal()
            if (first_ordinal + day - 1 - _EPOCH_ORDINAL) * _DAY_S > limit:
                return None
            found = self._matching_day(year, month, day, first_ordinal)
            if found is not None:
                if found != day:
                    day, time_of_day = found, 0
                seconds = self._time_at_or_after(time_of_day)
                if seconds is not None:
                    at = (first_ordinal + day - 1 - _EPOCH_ORDINAL) * _DAY_S + seconds
                    return at * 1000 if at <= limit else None
                day += 1
                time_of_day = 0
                if day <= _month_length(year, month):
                    continue
            # No (further) matching day this month: go to the 1st of the next one.
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
            day, time_of_day = 1, 0

    def _matching_day(self, year: int, month: int, day: int, first_ordinal: int) -> int | None:
        """The first day >= `day` of this month that matches dom/dow, if any."""
        # date.toordinal() % 7 is 0 on Sundays (ordinal 1 is Monday 0001-01-01).
        first_weekday = first_ordinal % 7
        for d in range(day, _month_length(year, month) + 1):
            in_dom = d in self.days
            in_dow = (first_weekday + d - 1) % 7 in self.weekdays
            if (in_dom or in_dow) if self.day_or else (in_dom and in_dow):
                return d
        return None

    def _time_at_or_after(self, time_of_day: int) -> int | None:
        """The first allowed second of the day >= `time_of_day`, if any."""
        h, rest = divmod(time_of_day, 3600)
        m, s = divmod(rest, 60)
        hour = _first_at_or_after(self.hours, h)
        if hour == h:
            minute = _first_at_or_after(self.minutes, m)
            if minute == m:
                second = _first_at_or_after(self.seconds, s)
                if second is not None:
                    return h * 3600 + m * 60 + second
                minute = _first_at_or_after(self.minutes, m + 1)
            if minute is not None:
                return h * 3600 + minute * 60 + self.seconds[0]
            hour = _first_at_or_after(self.hours, h + 1)
        if hour is None:
            return None
        return hour * 3600 + self.minutes[0] * 60 + self.seconds[0]
