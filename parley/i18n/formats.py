"""Numbers, money, dates, times and durations as people of the current language write them (Babel, CLDR).

Each function reads the locale of the moment (`catalog.current()`), like the texts they go into.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

from babel import dates, numbers, units

from parley.i18n.catalog import _, current
from parley.i18n.locales import babel_locale


def number(value: float, *, decimals: int | None = None) -> str:
    """1234567 → '1,234,567' (en), '1.234.567' (de), '1 234 567' (fr)."""
    locale = babel_locale(current())
    if decimals is None:
        return numbers.format_decimal(value, locale=locale)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return numbers.format_decimal(value, format=pattern, locale=locale, decimal_quantization=True)


def percent(fraction: float) -> str:
    """0.87 → '87%' (en), '87 %' (de), '%87' (tr)."""
    return numbers.format_percent(fraction, locale=babel_locale(current()))


def money(usd: float, *, decimals: int | None = None) -> str:
    """US dollars as the reader writes them ($12.35, 12,35 $). With `decimals`, exactly that many; without,
    cents, or the first significant digits of a sum below a cent ($0.0042) so that it does not read as nothing.
    """
    locale = babel_locale(current())
    if decimals is not None:
        pattern = str(locale.currency_formats["standard"].pattern).split(";")[0]
        pattern = pattern.replace("0.00", "0." + "0" * decimals) if decimals else pattern.replace(".00", "")
        return numbers.format_currency(usd, "USD", format=pattern, locale=locale, currency_digits=False)
    if usd == 0 or abs(usd) >= 0.01:
        return numbers.format_currency(usd, "USD", locale=locale)
    small = round(usd, 4) or round(usd, 6)
    return numbers.format_currency(small, "USD", locale=locale, currency_digits=False, decimal_quantization=False)


def duration(seconds: float, *, direction: bool = False) -> str:
    """As people say it: '10 minutes', 'about 2 hours' rounds to its unit; with `direction`, 'in 10 minutes'."""
    locale = babel_locale(current())
    delta = timedelta(seconds=max(seconds, 1))
    if direction:
        return dates.format_timedelta(delta, add_direction=True, locale=locale, threshold=1.5)
    return dates.format_timedelta(delta, locale=locale, threshold=1.5)


def wait(seconds: float) -> str:
    """When to try again, as people say it: 'in a minute' for up to one, else 'in 10 minutes', 'in 2 hours' —
    rounded up to whole minutes, so nobody is told a time that is too early."""
    if seconds <= 60:
        return _("in a minute")
    delta = timedelta(seconds=math.ceil(seconds / 60) * 60)
    return dates.format_timedelta(delta, add_direction=True, locale=babel_locale(current()), threshold=1)


def length(seconds: float) -> str:
    """An exact length for a limit: '5 minutes' when it is whole minutes, else '90 seconds'."""
    locale = babel_locale(current())
    whole = round(seconds)
    if whole >= 60 and whole % 60 == 0:
        return units.format_unit(whole // 60, "duration-minute", length="long", locale=locale)
    return units.format_unit(whole, "duration-second", length="long", locale=locale)


def when(moment: datetime) -> str:
    """A day and time: 'Dec 3, 6:00 PM' (en), '3. Dez., 18:00' (de), in the moment's own timezone."""
    locale = babel_locale(current())
    day_part = dates.format_skeleton("MMMd", moment, locale=locale)
    time_part = dates.format_time(moment, format="short", locale=locale)
    return str(locale.datetime_formats["short"]).format(time_part, day_part)


def long_when(moment: datetime) -> str:
    """A day named in full, and a time: 'Monday, November 30, 2026, 8:00 AM', 'Montag, 30. November 2026, 08:00'."""
    locale = babel_locale(current())
    day_part = dates.format_date(moment, format="full", locale=locale)
    time_part = dates.format_time(moment, format="short", locale=locale)
    return str(locale.datetime_formats["medium"]).format(time_part, day_part)


def weekday_clock(moment: datetime) -> str:
    """The weekday and the time: 'Sunday, 4:05 PM', 'Sonntag, 16:05'."""
    locale = babel_locale(current())
    day_part = dates.format_date(moment, format="EEEE", locale=locale)
    time_part = dates.format_time(moment, format="short", locale=locale)
    return str(locale.datetime_formats["medium"]).format(time_part, day_part)


def day(value: date) -> str:
    """A day as in a list of days: 'Tue, 3 Dec'."""
    return dates.format_skeleton("MMMEd", value, locale=babel_locale(current()))


def short_day(value: date) -> str:
    """A day in digits, as on a chart's axis: '12/3' (en), '3.12.' (de), '12/3' (ja)."""
    return dates.format_skeleton("Md", value, locale=babel_locale(current()))


def clock(moment: datetime | time) -> str:
    """A time of day: '18:00' (de), '6:00 PM' (en)."""
    return dates.format_time(moment, format="short", locale=babel_locale(current()))


def full_date(value: date) -> str:
    return dates.format_date(value, format="medium", locale=babel_locale(current()))


_LIST_SEPARATORS = {"ja": "、", "zh_Hans": "、", "ar": "، "}


def items(names: list[str] | tuple[str, ...]) -> str:
    """Names in a row, separated as the language separates them: 'alloy, ash', 'alloy、ash'."""
    return _LIST_SEPARATORS.get(current(), ", ").join(names)
