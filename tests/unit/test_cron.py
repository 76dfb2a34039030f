"""Tests for sustain.engine.cron: hand-checked cases, a brute-force reference and cronsim.

The reference (`RefExpr`, `ref_next`) is deliberately naive: hypothesis builds each
expression from structured terms and computes each field's value set itself, and
`ref_next` walks the calendar one day at a time with `datetime`, trying every
second of each matching day.  cronsim (Debian-faithful) is a second, independent
reading of the semantics on the subset where it agrees with Vixie.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import given, settings
from hypothesis import strategies as st

from sustain.engine import cron as cron_module
from sustain.engine.cron import HORIZON_DAYS, Cron, InvalidCron


def ms(iso: str) -> int:
    """Epoch ms of a naive ISO timestamp read as UTC."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(tzinfo=None).isoformat()


def nexts(expr: str, start: str, count: int) -> list[str | None]:
    cron = Cron.parse(expr)
    at: int | None = ms(start)
    out: list[str | None] = []
    for _ in range(count):
        assert at is not None
        at = cron.next_after(at)
        out.append(iso(at))
    return out


# ---------------------------------------------------------------- hand-checked cases
# 2026-11-27 is a Friday, 2026-11-28 a Saturday, 2026-12-13 a Sunday.

CASES = [
    # every minute; ms inside a minute
    ("* * * * *", "2026-01-01T00:00:00", ["2026-01-01T00:01:00", "2026-01-01T00:02:00"]),
    ("* * * * *", "2026-01-01T00:00:30.500", ["2026-01-01T00:01:00"]),
    # */15 incl. hour and day rollover
    ("*/15 * * * *", "2026-01-01T10:07:00", ["2026-01-01T10:15:00", "2026-01-01T10:30:00"]),
    ("*/15 * * * *", "2026-01-01T23:50:00", ["2026-01-02T00:00:00", "2026-01-02T00:15:00"]),
    # weekdays at 09:00, over a weekend
    ("0 9 * * 1-5", "2026-11-27T09:00:00", ["2026-11-30T09:00:00", "2026-12-01T09:00:00"]),
    ("0 9 * * 1-5", "2026-11-28T12:00:00", ["2026-11-30T09:00:00"]),
    ("0 9 * * MON-FRI", "2026-11-26T10:00:00", ["2026-11-27T09:00:00", "2026-11-30T09:00:00"]),
    # both restricted: the 13th OR a Friday
    (
        "0 0 13 * 5",
        "2026-11-01T00:00:00",
        ["2026-11-06T00:00:00", "2026-11-13T00:00:00", "2026-11-20T00:00:00"],
    ),
    ("0 0 13 * 5", "2026-12-11T00:00:00", ["2026-12-13T00:00:00", "2026-12-18T00:00:00"]),
    # a field starting with * is unrestricted for the OR rule (Vixie DOM_STAR/DOW_STAR)
    ("0 16 */2 * SAT", "2023-05-01T00:00:00", ["2023-05-13T16:00:00", "2023-05-27T16:00:00"]),
    (
        "0 16 1-31/2 * SAT",
        "2023-05-01T00:00:00",
        ["2023-05-01T16:00:00", "2023-05-03T16:00:00", "2023-05-05T16:00:00"],
    ),
    ("0 0 13 * */7", "2026-11-01T00:00:00", ["2026-12-13T00:00:00"]),  # 13th AND Sunday
    ("0 0 * * 1", "2026-11-28T00:00:00", ["2026-11-30T00:00:00", "2026-12-07T00:00:00"]),
    # Sunday as 7 and as 0
    ("0 0 * * 7", "2026-11-28T00:00:00", ["2026-11-29T00:00:00", "2026-12-06T00:00:00"]),
    ("0 0 * * 0", "2026-11-28T00:00:00", ["2026-11-29T00:00:00", "2026-12-06T00:00:00"]),
    ("0 0 * * 5-7", "2026-11-28T10:00:00", ["2026-11-29T00:00:00", "2026-12-04T00:00:00"]),
    # names, any case, in lists, ranges and steps
    ("0 0 1 jan,Jul *", "2026-11-28T00:00:00", ["2027-01-01T00:00:00", "2027-07-01T00:00:00"]),
    ("30 8 * * mon-FRI", "2026-11-28T00:00:00", ["2026-11-30T08:30:00"]),
    ("0 0 1 FEB/3 *", "2026-11-28T00:00:00", ["2027-02-01T00:00:00", "2027-05-01T00:00:00"]),
    ("0 0 1 */4 *", "2026-11-28T00:00:00", ["2027-01-01T00:00:00", "2027-05-01T00:00:00"]),
    ("5/20 * * * *", "2026-01-01T00:00:00", ["2026-01-01T00:05:00", "2026-01-01T00:25:00"]),
    ("5/20 * * * *", "2026-01-01T00:45:00", ["2026-01-01T01:05:00"]),
    # shorthands
    ("@hourly", "2026-11-28T10:00:00", ["2026-11-28T11:00:00"]),
    ("@daily", "2026-11-28T00:00:00", ["2026-11-29T00:00:00"]),
    ("@midnight", "2026-11-28T13:00:00", ["2026-11-29T00:00:00"]),
    ("@weekly", "2026-11-28T00:00:00", ["2026-11-29T00:00:00", "2026-12-06T00:00:00"]),
    ("@monthly", "2026-11-28T00:00:00", ["2026-12-01T00:00:00", "2027-01-01T00:00:00"]),
    ("@yearly", "2026-11-28T00:00:00", ["2027-01-01T00:00:00", "2028-01-01T00:00:00"]),
    ("@annually", "2026-11-28T00:00:00", ["2027-01-01T00:00:00"]),
    ("@DAILY", "2026-11-28T00:00:00", ["2026-11-29T00:00:00"]),
    # six fields: seconds first
    (
        "*/5 * * * * *",
        "2026-01-01T00:00:03",
        ["2026-01-01T00:00:05", "2026-01-01T00:00:10"],
    ),
    ("*/5 * * * * *", "2026-01-01T00:00:55", ["2026-01-01T00:01:00"]),
    ("30 0 12 * * *", "2026-01-01T12:00:30", ["2026-01-02T12:00:30"]),
    ("0 0 12 * * *", "2026-01-01T00:00:00", ["2026-01-01T12:00:00"]),
    # leap day, found within 5 years; strictly after an occurrence: 4 years later
    ("0 0 29 2 *", "2026-11-28T00:00:00", ["2028-02-29T00:00:00", "2032-02-29T00:00:00"]),
    ("0 0 29 2 *", "2028-02-29T00:00:00", ["2032-02-29T00:00:00"]),
    # month / year rollover
    ("59 23 31 12 *", "2026-12-31T23:59:00", ["2027-12-31T23:59:00"]),
    ("0 0 1 * *", "2026-12-15T00:00:00", ["2027-01-01T00:00:00"]),
    ("0 0 31 * *", "2026-11-28T00:00:00", ["2026-12-31T00:00:00", "2027-01-31T00:00:00"]),
    ("0 0 31 * *", "2027-01-31T00:00:00", ["2027-03-31T00:00:00"]),
    ("0 0 * * *", "2026-12-31T23:59:59.999", ["2027-01-01T00:00:00"]),
    # strictly after, and ms truncated to whole seconds
    ("0 9 * * *", "2026-11-28T09:00:00", ["2026-11-29T09:00:00"]),
    ("0 9 * * *", "2026-11-28T08:59:59.999", ["2026-11-28T09:00:00"]),
    ("0 9 * * *", "2026-11-28T09:00:00.999", ["2026-11-29T09:00:00"]),
    ("* * * * * *", "2026-11-28T09:00:00.999", ["2026-11-28T09:00:01"]),
    ("* * * * * *", "2026-11-28T09:00:00", ["2026-11-28T09:00:01"]),
    # tabs and extra spaces separate fields
    ("0\t9  *  * *", "2026-11-28T00:00:00", ["2026-11-28T09:00:00"]),
]


@pytest.mark.parametrize(("expr", "start", "expected"), CASES)
def test_hand_checked(expr: str, start: str, expected: list[str]) -> None:
    assert nexts(expr, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "start"),
    [
        ("0 0 30 2 *", "2026-01-01T00:00:00"),
        ("0 0 31 4,6,9,11 *", "2026-01-01T00:00:00"),
        ("0 0 29 2 *", "2096-03-01T00:00:00"),  # 2100 is no leap year: next is 2104
        ("0 0 29 2 */7", "2026-11-28T00:00:00"),  # 29 Feb on a Sunday: 2032 is > 5 years off
    ],
)
def test_no_occurrence_within_five_years(expr: str, start: str) -> None:
    assert Cron.parse(expr).next_after(ms(start)) is None


def test_horizon_is_five_years_with_leap_days() -> None:
    assert HORIZON_DAYS == 1827
    # From 2028-03-01 the next 29 Feb is 2032-02-29: inside the horizon.
    assert iso(Cron.parse("0 0 29 2 *").next_after(ms("2028-03-01T00:00:00"))) == (
        "2032-02-29T00:00:00"
    )


def test_instants_outside_supported_years_give_none() -> None:
    cron = Cron.parse("* * * * *")
    assert cron.next_after(ms("9999-01-01T00:00:00")) is None
    assert cron.next_after(-(10**18)) is None
    # -1 ms lies in the second before the epoch: the epoch itself is next.
    assert iso(cron.next_after(-1)) == "1970-01-01T00:00:00"


@pytest.mark.parametrize(
    ("year", "count"), [(2026, 365), (2027, 365), (2028, 366), (2100, 365), (2000, 366)]
)
@pytest.mark.parametrize("expr", ["0 12 * * *", "@daily", "30 59 23 * * *"])
def test_daily_schedule_fires_once_per_day_for_a_year(expr: str, year: int, count: int) -> None:
    cron = Cron.parse(expr)
    at = cron.next_after(ms(f"{year - 1}-12-31T23:59:59.999"))
    end = ms(f"{year}-12-31T23:59:59.999")
    fired: list[int] = []
    while at is not None and at <= end:
        fired.append(at)
        at = cron.next_after(at)
    days = {datetime.fromtimestamp(t / 1000, UTC).date() for t in fired}
    assert len(fired) == count
    assert len(days) == count


INVALID = [
    "",
    "   ",
    "* * * *",
    "* * * * * * *",
    "60 * * * *",
    "* 24 * * *",
    "* * 0 * *",
    "* * 32 * *",
    "* * * 0 *",
    "* * * 13 *",
    "* * * * 8",
    "60 * * * * *",
    "*/0 * * * *",
    "5-1 * * * *",
    "0 0 * * 7-0",
    "0 0 * * FRI-SUN",
    "1,,2 * * * *",
    ",1 * * * *",
    "1, * * * *",
    "a * * * *",
    "* * * * MONDAY",
    "* * * JANUARY *",
    "* * * MON *",
    "* * * * JAN",
    "MON * * * *",
    "-5 * * * *",
    "5- * * * *",
    "*/ * * * *",
    "/5 * * * *",
    "1/2/3 * * * *",
    "1-2-3 * * * *",
    "*-5 * * * *",
    "** * * * *",
    "* * L * *",
    "* * LW * *",
    "* * 15W * *",
    "* * * * 5#2",
    "* * * * 5L",
    "* * ? * *",
    "H * * * *",
    "1.5 * * * *",
    "+1 * * * *",
    "\u0663 * * * *",  # ARABIC-INDIC DIGIT THREE
    "1\x00 * * * *",
    "99999999999999999999999 * * * *",
    "*/99999999999999999999999 * * * *",
    "1" * 5000 + " * * * *",
    "@reboot",
    "@every 5m",
    "@",
    "@daily extra",
]


@pytest.mark.parametrize("expr", INVALID)
def test_invalid_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(InvalidCron) as info:
        Cron.parse(expr)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_parse_result_is_immutable_and_hashable() -> None:
    cron = Cron.parse("*/5 9-17 * * MON-FRI")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cron.minutes = (1,)  # type: ignore[misc]
    assert cron == Cron.parse("*/5 9-17 * * MON-FRI")
    assert len({cron, Cron.parse("*/5 9-17 * * MON-FRI")}) == 1
    assert cron.minutes == tuple(range(0, 60, 5))
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5})
    assert Cron.parse("0 0 * * 0,7").weekdays == frozenset({0})


def test_module_is_pure() -> None:
    """The engine takes time as an argument: no clock, OS, randomness or event loop."""
    tree = ast.parse(Path(cron_module.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "bisect", "dataclasses", "datetime"}


# ---------------------------------------------------------------- reference model


@dataclass(frozen=True)
class RefExpr:
    text: str
    six: bool
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]  # 0-7 as written
    dom_star: bool
    dow_star: bool
    # a term "a-a/k": cronsim reads it as "a/k", so that test skips these
    single_range_step: bool

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom_ok = d.day in self.doms
        dow_ok = d.isoweekday() % 7 in {w % 7 for w in self.dows}
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok


def ref_next(ref: RefExpr, start_ms: int) -> int | None:
    """First matching second strictly after start_ms // 1000, by walking every day."""
    base = start_ms // 1000
    limit = base + HORIZON_DAYS * 86400
    start = datetime.fromtimestamp(base + 1, UTC)
    day = start.date()
    first = start.hour * 3600 + start.minute * 60 + start.second
    while True:
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        if midnight > limit:
            return None
        if ref.day_matches(day):
            for h in range(24):
                if h not in ref.hours or h * 3600 + 3599 < first:
                    continue
                for m in range(60):
                    if m not in ref.minutes or h * 3600 + m * 60 + 59 < first:
                        continue
                    for s in range(60):
                        tod = h * 3600 + m * 60 + s
                        if tod >= first and s in ref.seconds:
                            at = midnight + tod
                            return at * 1000 if at <= limit else None
        day += timedelta(days=1)
        first = 0


MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@st.composite
def field(
    draw: st.DrawFn, low: int, high: int, names: dict[int, str], star_bias: bool
) -> tuple[str, frozenset[int], bool]:
    """(text, values, has an 'a-a/k' term) for one field."""
    if star_bias and draw(st.booleans()):
        return "*", frozenset(range(low, high + 1)), False

    def atom(v: int) -> str:
        if v in names and draw(st.booleans()):
            return draw(st.sampled_from([str.upper, str.lower, str.title]))(names[v])
        return str(v)

    terms: list[str] = []
    values: set[int] = set()
    odd = False
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["*", "*/k", "a", "a", "a-b", "a-b/k", "a/k"]))
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        k = draw(st.integers(1, high - low + 2))
        if kind == "*":
            terms.append("*")
            values.update(range(low, high + 1))
        elif kind == "*/k":
            terms.append(f"*/{k}")
            values.update(v for v in range(low, high + 1) if (v - low) % k == 0)
        elif kind == "a":
            terms.append(atom(a))
            values.add(a)
        elif kind == "a-b":
            terms.append(f"{atom(a)}-{atom(b)}")
            values.update(range(a, b + 1))
        elif kind == "a-b/k":
            terms.append(f"{atom(a)}-{atom(b)}/{k}")
            values.update(v for v in range(a, b + 1) if (v - a) % k == 0)
            odd = odd or a == b
        else:
            terms.append(f"{atom(a)}/{k}")
            values.update(v for v in range(a, high + 1) if (v - a) % k == 0)
    return ",".join(terms), frozenset(values), odd


@st.composite
def expressions(draw: st.DrawFn) -> RefExpr:
    six = draw(st.booleans())
    sec_text, secs, odd_s = draw(field(0, 59, {}, star_bias=False)) if six else ("", {0}, False)
    min_text, mins, odd_m = draw(field(0, 59, {}, star_bias=False))
    hour_text, hours, odd_h = draw(field(0, 23, {}, star_bias=False))
    dom_text, doms, odd_d = draw(field(1, 31, {}, star_bias=True))
    mon_text, months, odd_mo = draw(
        field(1, 12, {i + 1: n for i, n in enumerate(MONTH_NAMES)}, star_bias=True)
    )
    dow_text, dows, odd_w = draw(field(0, 7, dict(enumerate(DAY_NAMES)), star_bias=True))
    texts = [min_text, hour_text, dom_text, mon_text, dow_text]
    if six:
        texts.insert(0, sec_text)
    return RefExpr(
        text=" ".join(texts),
        six=six,
        seconds=frozenset(secs),
        minutes=mins,
        hours=hours,
        doms=doms,
        months=months,
        dows=dows,
        dom_star=dom_text.startswith("*"),
        dow_star=dow_text.startswith("*"),
        single_range_step=odd_s or odd_m or odd_h or odd_d or odd_mo or odd_w,
    )


starts = st.integers(ms("2000-01-01T00:00:00"), ms("2099-12-31T23:59:59.999"))


@settings(max_examples=150, deadline=None)
@given(expressions(), starts)
def test_next_after_equals_brute_force(ref: RefExpr, start: int) -> None:
    assert Cron.parse(ref.text).next_after(start) == ref_next(ref, start)


@settings(max_examples=60, deadline=None)
@given(expressions(), starts)
def test_successive_occurrences_match_and_nothing_between_does(ref: RefExpr, start: int) -> None:
    cron = Cron.parse(ref.text)
    at: int | None = start
    for _ in range(4):
        assert at is not None
        previous, at = at, cron.next_after(at)
        # ref_next scans every second after `previous`: equality means `at` matches
        # and no second strictly between the two does.
        assert at == ref_next(ref, previous)
        if at is None:
            break
        when = datetime.fromtimestamp(at / 1000, UTC)
        assert at % 1000 == 0
        assert at // 1000 > previous // 1000
        assert ref.day_matches(when.date())
        assert (when.hour, when.minute, when.second) in {
            (h, m, s) for h in ref.hours for m in ref.minutes for s in ref.seconds
        }


@settings(max_examples=150, deadline=None)
@given(expressions(), starts)
def test_agrees_with_cronsim(ref: RefExpr, start: int) -> None:
    if ref.single_range_step:
        return  # cronsim expands "a-a/k" like "a/k" (to the end of the field)
    cron = Cron.parse(ref.text)
    try:
        theirs = CronSim(ref.text, datetime.fromtimestamp(start // 1000, UTC))
    except CronSimError:
        # cronsim rejects a day of month beyond every chosen month: never fires.
        assert cron.next_after(start) is None
        return
    at = start
    for _ in range(4):
        try:
            expected: int | None = int(next(theirs).timestamp() * 1000)
        except StopIteration:  # nothing within cronsim's 50 years
            expected = None
        ours = cron.next_after(at)
        limit = at // 1000 * 1000 + HORIZON_DAYS * 86_400_000
        if expected is None or expected > limit:
            assert ours is None
            return
        assert ours == expected
        at = ours
