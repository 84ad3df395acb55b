"""Contact rules: when, and how often, a debtor may be contacted.

A send that falls outside the rules is deferred to the next allowed moment, never dropped
(docs/domain.md#contact-rules). The rules are a daily window in the debtor's local time, the weekdays and
holidays on which contact is allowed, and a cap on contacts per channel in a rolling 7 days.

The core is pure (no database) so it can be tested exhaustively: ``Window``,
``next_allowed_moment``, ``cap_frees_at`` and ``schedule``, which alternates the two until
both hold. ``decide`` reads a client's rules, holidays and recent contacts (a constant number
of queries) and returns a ``Decision`` with a reason fit for the client's timeline.

Time zones are handled on instants, not on wall-clock arithmetic: a window start that falls
in a daylight-saving gap (a local time that does not exist that day) gives the first real
instant after it, and a repeated hour (clocks going back) is inside the window only when its
local time is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Interaction
from cobranza.models import ContactRules, Holiday

UTC = dt.UTC
CAP_PERIOD = dt.timedelta(days=7)
# How far ahead next_allowed_moment looks before giving up: a year of holidays and then some.
SEARCH_DAYS = 370
ALL_WEEKDAYS = frozenset(range(1, 8))
WEEKEND = frozenset({6, 7})

# Channels whose contact with the debtor is ruled; letters (postal mail) and internal steps
# (manager review, hand-offs) are not contacts at a time of day.
CALL_CHANNEL = "call"
RULED_CHANNELS = ("email", "sms", "whatsapp", CALL_CHANNEL)


class NoAllowedMoment(ValueError):
    """The rules allow no contact at all within SEARCH_DAYS (e.g. a year of holidays)."""


# --- Pure core ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Allowed local times ``start <= t < end`` on allowed ISO weekdays (1 = Monday) that
    are not holidays. A window never crosses local midnight (start < end), as in the model."""

    start: dt.time
    end: dt.time
    weekdays: frozenset[int] = ALL_WEEKDAYS
    holidays: frozenset[dt.date] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("Window times are local wall-clock times, without tzinfo.")
        if not self.start < self.end:
            raise ValueError(f"Window start {self.start} must be before its end {self.end} (no crossing midnight).")
        if not self.weekdays or not self.weekdays <= ALL_WEEKDAYS:
            raise ValueError(f"Window weekdays must be a non-empty subset of 1..7, got {sorted(self.weekdays)}.")

    def allows_day(self, day: dt.date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def allows_local(self, local: dt.datetime) -> bool:
        return self.allows_day(local.date()) and self.start <= local.time() < self.end

    def contains(self, at: dt.datetime, tz: dt.tzinfo) -> bool:
        return self.allows_local(at.astimezone(tz))


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"An aware datetime is required, got {at!r}.")


def _offset_at(instant_s: int, tz: dt.tzinfo) -> dt.timedelta:
    return dt.datetime.fromtimestamp(instant_s, UTC).astimezone(tz).utcoffset()


def _transitions(tz: dt.tzinfo, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """Instants in [lo, hi] where the zone's UTC offset changes (DST, zone reforms).

    zoneinfo does not expose its transitions; sampling every hour and bisecting to the
    second finds them (real zones change offset at most a few times a year, on whole seconds).
    """
    found = []
    start_s, end_s = int(lo.timestamp()), int(hi.timestamp()) + 1
    prev_s, prev_off = start_s, _offset_at(start_s, tz)
    s = start_s
    while s < end_s:
        s = min(s + 3600, end_s)
        off = _offset_at(s, tz)
        if off != prev_off:
            a, b = prev_s, s  # offset(a) == prev_off != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                if _offset_at(mid, tz) == prev_off:
                    a = mid
                else:
                    b = mid
            found.append(dt.datetime.fromtimestamp(b, UTC))
        prev_s, prev_off = s, off
    return found


def _start_instants(day: dt.date, start: dt.time, tz: dt.tzinfo) -> list[dt.datetime]:
    """The real instants whose local time is ``day start``: none in a DST gap, two in a
    repeated hour (fold 0 and 1), otherwise one."""
    instants = []
    for fold in (0, 1):
        local = dt.datetime.combine(day, start, tzinfo=tz).replace(fold=fold)
        instant = local.astimezone(UTC)
        back = instant.astimezone(tz)
        if back.date() == day and back.time() == start and instant not in instants:
            instants.append(instant)
    return instants


def _entries(day: dt.date, tz: dt.tzinfo, window: Window) -> list[dt.datetime]:
    """Instants around local ``day`` at which the window may open: where local time reaches
    ``start``, and where it jumps (a DST transition can land inside the window, e.g. a start
    that falls in a spring-forward gap opens at the transition itself)."""
    if not window.allows_day(day):
        return []
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(UTC)
    return [
        *_start_instants(day, window.start, tz),
        *_transitions(tz, midnight - dt.timedelta(hours=3), midnight + dt.timedelta(hours=27)),
    ]


def next_allowed_moment(at: dt.datetime, tz: dt.tzinfo, window: Window) -> dt.datetime:
    """The earliest instant ≥ ``at`` inside ``window`` in local time ``tz``.

    Returns ``at`` itself when it is inside; otherwise the instant in UTC (aware datetimes
    in a zone compare by wall clock within the zone and never equal across zones during a
    repeated hour, so instants travel in UTC). Raises NoAllowedMoment when nothing is
    allowed within SEARCH_DAYS.
    """
    _require_aware(at)
    if window.contains(at, tz):
        return at
    # The allowed set is a union of intervals [entry, exit); the answer is the earliest
    # allowed entry after `at`. Local dates can step back by a day when clocks go back at
    # midnight (America/Santiago), so start a day early and look one day past the first hit.
    first_day = at.astimezone(tz).date() - dt.timedelta(days=1)
    best: dt.datetime | None = None
    best_day: dt.date | None = None
    for offset in range(SEARCH_DAYS + 2):
        day = first_day + dt.timedelta(days=offset)
        if best_day is not None and day > best_day + dt.timedelta(days=1):
            break
        for candidate in _entries(day, tz, window):
            if candidate > at and (best is None or candidate < best) and window.contains(candidate, tz):
                best = candidate
                best_day = best_day or day
    if best is None:
        raise NoAllowedMoment(f"No allowed moment within {SEARCH_DAYS} days after {at.isoformat()}.")
    return best


def _count_in_period(previous: Sequence[dt.datetime], moment: dt.datetime) -> int:
    return sum(1 for p in previous if moment - CAP_PERIOD < p <= moment)


def cap_frees_at(previous: Iterable[dt.datetime], cap: int, at: dt.datetime) -> dt.datetime | None:
    """None when fewer than ``cap`` of ``previous`` fall in the rolling period (at − 7 d, at];
    otherwise the earliest later moment at which enough have fallen out of it."""
    _require_aware(at)
    if cap < 1:
        raise ValueError("A cap below 1 would defer forever.")
    # In UTC: 7 days are 168 hours even across a DST change (zone arithmetic is wall-clock).
    at = at.astimezone(UTC)
    previous = sorted(p.astimezone(UTC) for p in previous)
    if _count_in_period(previous, at) < cap:
        return None
    # The count only drops when a contact leaves the period, exactly 7 days after it.
    for moment in sorted({p + CAP_PERIOD for p in previous if p + CAP_PERIOD > at}):
        if _count_in_period(previous, moment) < cap:
            return moment
    raise AssertionError("unreachable: after the last contact leaves the period the count is 0")


@dataclass(frozen=True)
class Block:
    """A rule that held a send back: ``rule`` is "window" or "cap", ``at`` when it applied."""

    rule: str
    at: dt.datetime


def schedule(
    at: dt.datetime,
    tz: dt.tzinfo,
    window: Window,
    previous: Iterable[dt.datetime] = (),
    cap: int | None = None,
) -> tuple[dt.datetime, tuple[Block, ...]]:
    """The earliest moment ≥ ``at`` inside the window with fewer than ``cap`` contacts in
    the 7 days before it, and the rules that held the send back on the way there."""
    previous = sorted(p.astimezone(UTC) for p in previous)
    moment, blocks = at, []
    # Each cap round moves past at least one previous contact for good, so this ends.
    for _round in range(len(previous) + 2):
        allowed = next_allowed_moment(moment, tz, window)
        if allowed.timestamp() != moment.timestamp():
            blocks.append(Block("window", moment))
        freed = cap_frees_at(previous, cap, allowed) if cap is not None else None
        if freed is None:
            return allowed, tuple(blocks)
        blocks.append(Block("cap", allowed))
        moment = freed
    raise AssertionError("unreachable: the cap frees once every previous contact is 7 days old")


# --- Database-backed decision ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether a contact may happen at the asked moment and, if not, when and why not."""

    allowed: bool
    send_at: dt.datetime
    reason: str = ""
    blocks: tuple[Block, ...] = field(default=(), repr=False)


def client_time_zone(client) -> ZoneInfo:
    """The debtor's time zone; the company's (settings.TIME_ZONE) when the stored value is
    not a valid zone (imported data, a zone removed from the tz database)."""
    for name in (getattr(client, "time_zone", None), settings.TIME_ZONE):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            continue
    return ZoneInfo("UTC")


def default_country() -> str:
    return getattr(settings, "DUNNING_DEFAULT_COUNTRY", "MX")


def builtin_rules():
    """The Mexican preset (CONDUSEF hours), used when the database has no rules at all."""
    return ContactRules(
        country="MX",
        name="México (CONDUSEF)",
        start_time=dt.time(7),
        end_time=dt.time(22),
        weekdays="1,2,3,4,5,6,7",
        max_per_channel_7d=3,
        max_calls_7d=7,
        skip_holidays=True,
    )


def rules_for(country: str):
    """The client's country's rules, else the default country's, else the built-in preset
    (one query)."""
    fallback = default_country()
    found = {r.country: r for r in ContactRules.objects.filter(country__in={country, fallback})}
    return found.get(country) or found.get(fallback) or builtin_rules()


def _weekdays(value: str) -> frozenset[int]:
    return frozenset(int(part) for part in value.split(",") if part.strip())


def _channel_cap(rules, channel: str) -> int | None:
    cap = rules.max_calls_7d if channel == CALL_CHANNEL else rules.max_per_channel_7d
    if cap is None:
        return None
    # A cap of 0 would defer every send forever, and a send is deferred, never dropped:
    # read it as the strictest cap that still lets one contact a week through.
    return max(cap, 1)


def _cap_reason(channel: str, cap: int) -> str:
    if channel == "email":
        text = ngettext(
            "Límite de %(cap)d correo en 7 días alcanzado", "Límite de %(cap)d correos en 7 días alcanzado", cap
        )
    elif channel == "sms":
        text = ngettext("Límite de %(cap)d SMS en 7 días alcanzado", "Límite de %(cap)d SMS en 7 días alcanzado", cap)
    elif channel == "whatsapp":
        text = ngettext(
            "Límite de %(cap)d mensaje de WhatsApp en 7 días alcanzado",
            "Límite de %(cap)d mensajes de WhatsApp en 7 días alcanzado",
            cap,
        )
    else:
        text = ngettext(
            "Límite de %(cap)d llamada en 7 días alcanzado", "Límite de %(cap)d llamadas en 7 días alcanzado", cap
        )
    return text % {"cap": cap}


def _weekday_name(iso_weekday: int) -> str:
    return [_("lunes"), _("martes"), _("miércoles"), _("jueves"), _("viernes"), _("sábado"), _("domingo")][
        iso_weekday - 1
    ]


def _window_reason(moment: dt.datetime, tz: ZoneInfo, window: Window, holiday_names: Mapping[dt.date, str]) -> str:
    local = moment.astimezone(tz)
    day = local.date()
    if day in window.holidays:
        return _("Día festivo: %(name)s") % {"name": holiday_names.get(day) or day.isoformat()}
    if day.isoweekday() not in window.weekdays:
        if ALL_WEEKDAYS - window.weekdays == WEEKEND:
            return _("Fin de semana (no se contacta sábados ni domingos)")
        return _("Día no permitido para contactar: %(day)s") % {"day": _weekday_name(day.isoweekday())}
    return _("Fuera del horario permitido (%(start)s–%(end)s, %(tz)s)") % {
        "start": window.start.strftime("%H:%M"),
        "end": window.end.strftime("%H:%M"),
        "tz": getattr(tz, "key", str(tz)),
    }


def decide(*, client, channel: str, at: dt.datetime) -> Decision:
    """May ``client`` be contacted through ``channel`` at ``at``? If not, when, and why.

    Calls and messages (email, SMS, WhatsApp) follow the client's country rules: the local
    window, weekdays and holidays, and the 7-day cap counted on the outbound timeline
    entries of the same kind (sent notices and contacts logged by collectors alike).
    Letters and internal steps are always allowed. At most three queries.
    """
    _require_aware(at)
    if channel not in RULED_CHANNELS:
        return Decision(allowed=True, send_at=at)

    rules = rules_for(client.country)
    tz = client_time_zone(client)
    holiday_names: dict[dt.date, str] = {}
    if rules.skip_holidays:
        # The debtor's own calendar, whichever country's rules apply.
        first = at.astimezone(tz).date() - dt.timedelta(days=1)
        holiday_names = dict(
            Holiday.objects.filter(
                country=client.country, date__range=(first, first + dt.timedelta(days=SEARCH_DAYS + 2))
            ).values_list("date", "name")
        )
    window = Window(
        start=rules.start_time,
        end=rules.end_time,
        weekdays=_weekdays(rules.weekdays),
        holidays=frozenset(holiday_names),
    )
    cap = _channel_cap(rules, channel)
    previous: list[dt.datetime] = []
    if cap is not None:
        previous = list(
            Interaction.objects.filter(
                client=client,
                kind=channel,  # StepChannel and Interaction.Kind share these four values
                direction=Interaction.Direction.OUTBOUND,
                occurred_at__gt=at - CAP_PERIOD,
                # A correction restates an earlier entry; it is not another contact.
                corrects__isnull=True,
            ).values_list("occurred_at", flat=True)
        )

    send_at, blocks = schedule(at, tz, window, previous, cap)
    reasons: list[str] = []
    for block in blocks:
        text = _cap_reason(channel, cap) if block.rule == "cap" else _window_reason(block.at, tz, window, holiday_names)
        if text not in reasons:
            reasons.append(text)
    return Decision(allowed=not blocks, send_at=send_at, reason="; ".join(reasons), blocks=blocks)
