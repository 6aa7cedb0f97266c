"""Cron expressions for scheduled retraining: five fields (minute hour day-of-month month day-of-week), each `*`, a
number, a range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`; day of week 0-6 from Sunday (7 is Sunday too).
When both day fields are restricted, either matching is enough (cron's rule)."""

from __future__ import annotations

from datetime import datetime

from dyag_core.errors import DyagError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(DyagError):
    def __init__(self, message: str):
        super().__init__("invalid_schedule", message)


def _values(part: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            raise CronError(f"the {name} field {part!r} is not a number, a range, a list or a step") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"the {name} field {part!r} must stay within {low}-{high} (steps of 1 or more)")
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> tuple[set[int], ...]:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(
            f"a schedule has five fields (minute hour day month weekday), e.g. '0 3 * * *'; "
            f"{expression!r} has {len(parts)}"
        )
    fields = tuple(_values(p, name, low, high) for p, (name, low, high) in zip(parts, _FIELDS, strict=True))
    weekdays = fields[4]
    if 7 in weekdays:
        weekdays.add(0)
    return fields


def cron_matches(expression: str, when: datetime) -> bool:
    """Whether the schedule fires in the minute of `when`."""
    minute, hour, day, month, weekday = parse_cron(expression)
    parts = expression.split()
    cron_weekday = (when.weekday() + 1) % 7  # Python: Monday 0; cron: Sunday 0
    day_ok = when.day in day
    weekday_ok = cron_weekday in weekday
    if parts[2] != "*" and parts[4] != "*":
        days = day_ok or weekday_ok
    else:
        days = day_ok and weekday_ok
    return when.minute in minute and when.hour in hour and when.month in month and days
