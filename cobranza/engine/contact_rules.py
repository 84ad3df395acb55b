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
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import Interaction
from cobranza import texts
from cobranza.models import ESCALATION_CHANNELS, ContactRules, Holiday, Notice, NoticeStatus
from cobranza.rules import next_contact_day, pacing_days

UTC = dt.UTC
CAP_PERIOD = dt.timedelta(days=7)
# A client whose country has no rules is held, and looked at again a day later.
MISSING_RULES_RETRY = dt.timedelta(days=1)
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
    # Saturday's own hours where the law sets them apart (Colombia: 08:00–15:00); None: the
    # same hours as the other days.
    saturday: tuple[dt.time, dt.time] | None = None

    def __post_init__(self):
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        for start, end in ((self.start, self.end), *([self.saturday] if self.saturday else [])):
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("Window times are local wall-clock times, without tzinfo.")
            if not start < end:
                raise ValueError(f"Window start {start} must be before its end {end} (no crossing midnight).")
        if not self.weekdays or not self.weekdays <= ALL_WEEKDAYS:
            raise ValueError(f"Window weekdays must be a non-empty subset of 1..7, got {sorted(self.weekdays)}.")

    def hours(self, day: dt.date) -> tuple[dt.time, dt.time]:
        """The local opening and closing time on ``day``."""
        if self.saturday is not None and day.isoweekday() == 6:
            return self.saturday
        return self.start, self.end

    def allows_day(self, day: dt.date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def allows_local(self, local: dt.datetime) -> bool:
        start, end = self.hours(local.date())
        return self.allows_day(local.date()) and start <= local.time() < end

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
        *_start_instants(day, window.hours(day)[0], tz),
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
    *,
    overall: tuple[Iterable[dt.datetime], int] | None = None,
) -> tuple[dt.datetime, tuple[Block, ...]]:
    """The earliest moment ≥ ``at`` inside the window with fewer than ``cap`` contacts in
    the 7 days before it — and, with ``overall`` = (contacts on every channel, cap), fewer
    than that many contacts of any kind — and the rules that held the send back on the way
    there ("cap" for the channel's cap, "overall" for the cap across channels)."""
    caps = []
    if cap is not None:
        caps.append(("cap", sorted(p.astimezone(UTC) for p in previous), cap))
    if overall is not None:
        caps.append(("overall", sorted(p.astimezone(UTC) for p in overall[0]), overall[1]))
    moment, blocks = at, []
    # Each cap round moves past at least one previous contact for good, so this ends.
    for _round in range(sum(len(p) for _r, p, _c in caps) + 2):
        allowed = next_allowed_moment(moment, tz, window)
        if allowed.timestamp() != moment.timestamp():
            blocks.append(Block("window", moment))
        freed = [(rule, cap_frees_at(p, c, allowed)) for rule, p, c in caps]
        freed = [(rule, when) for rule, when in freed if when is not None]
        if not freed:
            return allowed, tuple(blocks)
        blocks.extend(Block(rule, allowed) for rule, _when in freed)
        moment = max(when for _rule, when in freed)
    raise AssertionError("unreachable: the caps free once every previous contact is 7 days old")


# --- Spread (docs/domain.md#spread) ---------------------------------------------------------

# Knuth's multiplicative hash: consecutive client ids land far apart on [0, 2^32), so the
# slots of a client base cover the window evenly; the same id always gives the same slot.
SPREAD_MULTIPLIER = 2654435761
SPREAD_MODULUS = 2**32
# The last hour of the window is left free of slots (at most half a short window): retries,
# a dispatch backlog or a cap that frees late still fit in the same day.
SPREAD_MARGIN_MINUTES = 60
# The channels whose automatic sends are spread: messages at a time of day. Calls and
# reviews are work for a person; letters are postal mail.
SPREAD_CHANNELS = ("email", "sms", "whatsapp")


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def spread_offset(client_id: int, start: dt.time, end: dt.time) -> int:
    """Minutes after ``start`` of the client's slot in the window ``start``–``end``: the
    client's fixed fraction of the window less its margin (``spread_offset_sql`` is its twin)."""
    length = (_seconds(end) - _seconds(start)) // 60
    span = length - min(SPREAD_MARGIN_MINUTES, length // 2)
    return (client_id * SPREAD_MULTIPLIER % SPREAD_MODULUS) * span // SPREAD_MODULUS


def spread_offset_sql(client_id: str, start: str, end: str) -> str:
    """``spread_offset`` in SQL, as an integer number of minutes, for SQL expressions
    ``client_id`` (bigint) and ``start``/``end`` (time)."""
    length = f"FLOOR(EXTRACT(EPOCH FROM (({end}) - ({start}))) / 60)::bigint"
    span = f"({length} - LEAST({SPREAD_MARGIN_MINUTES}, {length} / 2))"
    return f"DIV(MOD(({client_id})::numeric * {SPREAD_MULTIPLIER}, {SPREAD_MODULUS}) * {span}, {SPREAD_MODULUS})::int"


def spread_slot(client_id: int, start: dt.time, end: dt.time) -> dt.time:
    """The client's own local time in the window ``start``–``end`` (docs/domain.md#spread)."""
    moment = dt.datetime.combine(dt.date(2000, 1, 1), start) + dt.timedelta(
        minutes=spread_offset(client_id, start, end)
    )
    return moment.time()


def spread_slot_sql(client_id: str, start: str, end: str) -> str:
    """``spread_slot`` in SQL: a ``time``."""
    return f"(({start}) + make_interval(mins => {spread_offset_sql(client_id, start, end)}))::time"


def spread_window(window: Window, client_id: int) -> Window:
    """The client's share of ``window``: from its slot to the window's end, every allowed day.
    A send before the slot waits for it; one after it (a slot already passed today) goes
    while the window is open, so a deferral lands on the next allowed day's slot."""
    saturday = window.saturday
    if saturday is not None:
        saturday = (spread_slot(client_id, *saturday), saturday[1])
    return Window(
        start=spread_slot(client_id, window.start, window.end),
        end=window.end,
        weekdays=window.weekdays,
        holidays=window.holidays,
        saturday=saturday,
    )


def slot_moment(client_id: int, day: dt.date, tz: dt.tzinfo, window: Window) -> dt.datetime:
    """The instant of the client's slot on local ``day`` (by the day's own hours), in UTC —
    what the planner computes in SQL for the notices it plans (``planner``)."""
    start, end = window.hours(day)
    local = dt.datetime.combine(day, spread_slot(client_id, start, end), tzinfo=tz)
    return local.astimezone(UTC)


# --- Pacing (docs/domain.md#pacing) ---------------------------------------------------------


def spacing_frees_at(last_sent: dt.datetime | None, days: int, tz: dt.tzinfo) -> dt.datetime | None:
    """The first instant of the client's local day ``days`` after the local day of
    ``last_sent`` (``cobranza.rules.next_contact_day``), in UTC; None without a last send. A midnight
    that falls in a daylight-saving gap gives the first real instant of that day."""
    if last_sent is None:
        return None
    _require_aware(last_sent)
    day = next_contact_day(last_sent.astimezone(tz).date(), days)
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Pacing:
    """Not before ``frees_at`` (None: no limit), because of ``reason``."""

    frees_at: dt.datetime | None
    reason: str = ""


def last_sent_by_client(client_ids: Iterable[int], *, excluding: Iterable[int] = ()) -> dict[int, dict]:
    """``pacing_for``'s one read for many clients at once (a dispatch batch): per client, the
    moment of its last sent notice (``any``) and of its last sent escalation. One query."""
    rows = (
        Notice.objects.filter(client_id__in=list(client_ids), status=NoticeStatus.SENT)
        .exclude(pk__in=list(excluding))
        .values("client_id")
        .annotate(
            any=Max("sent_at"),
            escalation=Max("sent_at", filter=Q(channel__in=ESCALATION_CHANNELS)),
        )
    )
    return {row["client_id"]: {"any": row["any"], "escalation": row["escalation"]} for row in rows}


def pacing_for(notice, *, last: dict | None = None) -> Pacing:
    """The spacing that holds ``notice`` back: the client's last sent notice (any step, any
    channel, any policy) and, for an escalation step, its last sent escalation, against the
    notice's policy's minimum days, by the client's local day. One query, none when ``last``
    (``last_sent_by_client``'s entry for the client) was read beforehand."""
    if last is None:
        last = (
            Notice.objects.filter(client_id=notice.client_id, status=NoticeStatus.SENT)
            .exclude(pk=notice.pk)
            .aggregate(
                any=Max("sent_at"),
                escalation=Max("sent_at", filter=Q(channel__in=ESCALATION_CHANNELS)),
            )
        )
    tz = client_time_zone(notice.client)
    policy = notice.step.policy
    days = pacing_days(policy.min_days_between_contacts)
    frees_at, reason = spacing_frees_at(last["any"], days, tz), ""
    if frees_at is not None:
        local = timezone.localtime(last["any"], tz).strftime("%Y-%m-%d")
        reason = texts.PACING_DAYS(days=days, date=local)
    if notice.channel in ESCALATION_CHANNELS:
        escalation_days = pacing_days(policy.min_days_between_escalations)
        escalation_frees = spacing_frees_at(last["escalation"], escalation_days, tz)
        if escalation_frees is not None and (frees_at is None or escalation_frees > frees_at):
            frees_at = escalation_frees
            reason = texts.PACING_ESCALATIONS(
                days=escalation_days, date=timezone.localtime(last["escalation"], tz).strftime("%Y-%m-%d")
            )
    return Pacing(frees_at=frees_at, reason=reason)


# --- Database-backed decision ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether a contact may happen at the asked moment and, if not, when and why not."""

    allowed: bool
    send_at: dt.datetime
    reason: str = ""
    blocks: tuple[Block, ...] = field(default=(), repr=False)


def zone_named(name: str | None) -> ZoneInfo:
    """The zone stored as ``name``; the company's (settings.TIME_ZONE) when it is not a valid
    zone (imported data, a zone removed from the tz database)."""
    for candidate in (name, settings.TIME_ZONE):
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            continue
    return ZoneInfo("UTC")


def client_time_zone(client) -> ZoneInfo:
    """The debtor's time zone (``zone_named``)."""
    return zone_named(getattr(client, "time_zone", None))


def rules_for(country: str) -> ContactRules | None:
    """The rules of the client's country, or None: a country without rules is a configuration
    error shown on the client and holding every send, never a silent fallback to another
    country's rules (docs/domain.md#contact-rules). One query."""
    return ContactRules.objects.filter(country=country).first()


def missing_rules_reason(country: str) -> str:
    return texts.MISSING_RULES(country=country or "—")


@functools.lru_cache(maxsize=256)
def _national_holidays(country: str, year: int) -> dict[dt.date, str]:
    """The country's national public holidays in ``year``, from the ``holidays`` package (a
    maintained calendar: movable feasts, bridge-day laws and observed days included), named in
    Spanish where the package has the translation. Regional holidays are added as Holiday rows."""
    try:
        calendar = holidays.country_holidays(country, years=year)
    except NotImplementedError:  # a country the package does not know: only the Holiday rows
        return {}
    if "es" in getattr(calendar, "supported_languages", ()):
        calendar = holidays.country_holidays(country, years=year, language="es")
    return dict(calendar.items())


def holidays_between(country: str, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """National holidays of ``country`` from ``first`` to ``last`` (no query)."""
    found: dict[dt.date, str] = {}
    for year in range(first.year, last.year + 1):
        found.update((day, name) for day, name in _national_holidays(country, year).items() if first <= day <= last)
    return found


def window_of(rules: ContactRules, holiday_names: Mapping[dt.date, str]) -> Window:
    """The allowed local times of a country's rules, with the holidays found for the client."""
    return Window(
        start=rules.start_time,
        end=rules.end_time,
        weekdays=_weekdays(rules.weekdays),
        holidays=frozenset(holiday_names),
        saturday=(rules.saturday_start_time, rules.saturday_end_time) if rules.saturday_start_time else None,
    )


def _weekdays(value: str) -> frozenset[int]:
    return frozenset(int(part) for part in value.split(",") if part.strip())


def _channel_cap(rules, channel: str) -> int | None:
    return _at_least_one(rules.max_calls_7d if channel == CALL_CHANNEL else rules.max_per_channel_7d)


def _at_least_one(cap: int | None) -> int | None:
    if cap is None:
        return None
    # A cap of 0 would defer every send forever, and a send is deferred, never dropped:
    # read it as the strictest cap that still lets one contact a week through.
    return max(cap, 1)


def _overall_reason(cap: int) -> str:
    return texts.CAP_ALL(cap=cap)


def _cap_reason(channel: str, cap: int) -> str:
    text = {"email": texts.CAP_EMAIL, "sms": texts.CAP_SMS, "whatsapp": texts.CAP_WHATSAPP}.get(channel, texts.CAP_CALL)
    return text(cap=cap)


def _weekday_name(iso_weekday: int) -> str:
    return texts.WEEKDAYS[iso_weekday - 1]()


def _window_reason(moment: dt.datetime, tz: ZoneInfo, window: Window, holiday_names: Mapping[dt.date, str]) -> str:
    local = moment.astimezone(tz)
    day = local.date()
    if day in window.holidays:
        return texts.HOLIDAY(name=holiday_names.get(day) or day.isoformat())
    if day.isoweekday() not in window.weekdays:
        if ALL_WEEKDAYS - window.weekdays == WEEKEND:
            return texts.WEEKEND()
        return texts.DAY_NOT_ALLOWED(day=_weekday_name(day.isoweekday()))
    start, end = window.hours(day)
    return texts.OUTSIDE_HOURS(start=start.strftime("%H:%M"), end=end.strftime("%H:%M"), tz=getattr(tz, "key", str(tz)))


def _spread_reason(moment: dt.datetime, tz: ZoneInfo, window: Window, client_id: int) -> str:
    start, end = window.hours(moment.astimezone(tz).date())
    return texts.SPREAD_SLOT(
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
        slot=spread_slot(client_id, start, end).strftime("%H:%M"),
    )


@dataclass(frozen=True)
class Facts:
    """What ``decide`` reads, read once for many clients (a dispatch batch, ``load_facts``):
    the rules of their countries, the Holiday rows of those countries from ``first`` to
    ``last``, and each client's outbound contacts since ``since``."""

    rules: dict[str, ContactRules]
    holidays: dict[str, dict[dt.date, str]]
    first: dt.date
    last: dt.date
    since: dt.datetime
    previous: dict[int, list[tuple[str, dt.datetime]]]


def load_facts(clients: Iterable, *, at: dt.datetime) -> Facts:
    """``decide``'s reads for ``clients`` at ``at`` or later: three queries, however many
    clients. A client contacted after this read (by the same batch) must not use them."""
    _require_aware(at)
    clients = list(clients)
    countries = {c.country for c in clients}
    rules: dict[str, ContactRules] = {}
    for row in ContactRules.objects.filter(country__in=countries).order_by("-pk"):
        rules[row.country] = row  # the first by pk wins, as rules_for's .first()
    first = at.astimezone(UTC).date() - dt.timedelta(days=2)
    last = first + dt.timedelta(days=SEARCH_DAYS + 5)
    days: dict[str, dict[dt.date, str]] = {country: {} for country in countries}
    for country, day, name in Holiday.objects.filter(country__in=countries, date__range=(first, last)).values_list(
        "country", "date", "name"
    ):
        days[country][day] = name
    since = at - CAP_PERIOD
    previous: dict[int, list[tuple[str, dt.datetime]]] = {c.pk: [] for c in clients}
    for client_id, kind, occurred_at in Interaction.objects.filter(
        client_id__in=list(previous),
        kind__in=RULED_CHANNELS,
        direction=Interaction.Direction.OUTBOUND,
        occurred_at__gt=since,
        corrects__isnull=True,
    ).values_list("client_id", "kind", "occurred_at"):
        previous[client_id].append((kind, occurred_at))
    return Facts(rules=rules, holidays=days, first=first, last=last, since=since, previous=previous)


def decide(
    *,
    client,
    channel: str,
    at: dt.datetime,
    pacing: Pacing | None = None,
    spread: bool = False,
    facts: Facts | None = None,
) -> Decision:
    """May ``client`` be contacted through ``channel`` at ``at``? If not, when, and why.

    Calls and messages (email, SMS, WhatsApp) follow the client's country rules: the local
    window (Saturday's own hours where set), weekdays and holidays (national ones from the
    ``holidays`` package plus Holiday rows), the 7-day cap of the channel and, where the rules
    set one, the 7-day cap across channels, counted on the outbound timeline entries (sent
    notices and contacts logged by collectors alike). A country without rules holds the send
    for a day with a reason saying so. Letters and internal steps are always allowed. At most
    three queries.

    ``pacing`` (``pacing_for``), for every channel: the send waits for the client's spacing
    first, and the other rules apply from there (docs/domain.md#pacing).

    ``spread``, for automatic messages (email, SMS, WhatsApp): the window starts at the
    client's own slot (``spread_window``, docs/domain.md#spread) instead of its opening.
    """
    _require_aware(at)
    paced: list[Block] = []
    reasons: list[str] = []
    if pacing is not None and pacing.frees_at is not None and pacing.frees_at > at:
        paced.append(Block("pacing", at))
        reasons.append(pacing.reason)
        at = pacing.frees_at
    if channel not in RULED_CHANNELS:
        return Decision(allowed=not paced, send_at=at, reason=texts.join(reasons), blocks=tuple(paced))

    if facts is not None and (client.pk not in facts.previous or at - CAP_PERIOD < facts.since):
        facts = None  # not read for this client or this moment: read now
    rules = facts.rules.get(client.country) if facts is not None else rules_for(client.country)
    if rules is None:
        return Decision(
            allowed=False,
            send_at=at + MISSING_RULES_RETRY,
            reason=texts.join([*reasons, missing_rules_reason(client.country)]),
            blocks=(*paced, Block("rules", at)),
        )
    tz = client_time_zone(client)
    holiday_names: dict[dt.date, str] = {}
    if rules.skip_holidays:
        # The debtor's own calendar, whichever country's rules apply.
        first = at.astimezone(tz).date() - dt.timedelta(days=1)
        last = first + dt.timedelta(days=SEARCH_DAYS + 2)
        holiday_names = holidays_between(client.country, first, last)
        if facts is not None and facts.first <= first and last <= facts.last:
            holiday_names.update(
                (day, name) for day, name in facts.holidays.get(client.country, {}).items() if first <= day <= last
            )
        else:
            holiday_names.update(
                Holiday.objects.filter(country=client.country, date__range=(first, last)).values_list("date", "name")
            )
    window = window_of(rules, holiday_names)
    cap = _channel_cap(rules, channel)
    overall_cap = _at_least_one(rules.max_contacts_7d)
    previous: list[tuple[str, dt.datetime]] = []
    if facts is not None:
        kinds = RULED_CHANNELS if overall_cap is not None else (channel,)
        previous = [
            (kind, when)
            for kind, when in facts.previous[client.pk]
            if kind in kinds and when > at - CAP_PERIOD and (cap is not None or overall_cap is not None)
        ]
    elif cap is not None or overall_cap is not None:
        previous = list(
            Interaction.objects.filter(
                client=client,
                # StepChannel and Interaction.Kind share these four values
                kind__in=RULED_CHANNELS if overall_cap is not None else (channel,),
                direction=Interaction.Direction.OUTBOUND,
                occurred_at__gt=at - CAP_PERIOD,
                # A correction restates an earlier entry; it is not another contact.
                corrects__isnull=True,
            ).values_list("kind", "occurred_at")
        )

    spread = spread and channel in SPREAD_CHANNELS and rules.spread_sends
    send_at, blocks = schedule(
        at,
        tz,
        spread_window(window, client.pk) if spread else window,
        [when for kind, when in previous if kind == channel],
        cap,
        overall=([when for _kind, when in previous], overall_cap) if overall_cap is not None else None,
    )
    for block in blocks:
        if block.rule == "cap":
            text = _cap_reason(channel, cap)
        elif block.rule == "overall":
            text = _overall_reason(overall_cap)
        elif spread and window.contains(block.at, tz):
            text = _spread_reason(block.at, tz, window, client.pk)
        else:
            text = _window_reason(block.at, tz, window, holiday_names)
        if text not in reasons:
            reasons.append(text)
    blocks = (*paced, *blocks)
    return Decision(allowed=not blocks, send_at=send_at, reason=texts.join(reasons), blocks=blocks)


# --- When a collector may call (docs/domain.md#call-windows) ---------------------------------


@dataclass(frozen=True)
class CallWindow:
    """Whether a debtor of ``country`` living in ``time_zone`` may be called at ``at`` by the
    window, weekdays and holidays of the country's rules (the 7-day call cap is checked when
    the call is logged): their local time, until when (allowed) or from when (not), and why."""

    allowed: bool
    local_now: dt.datetime
    until: dt.datetime | None = None  # allowed: today's closing time, local
    opens: dt.datetime | None = None  # not allowed: the next allowed moment, local
    reason: str = ""


def call_windows(pairs: Iterable[tuple[str, str]], at: dt.datetime) -> dict[tuple[str, str], CallWindow]:
    """The call window now for each (country, time zone) pair: two queries (the countries'
    rules and their Holiday rows) for any number of pairs — the worklist reads it per page."""
    _require_aware(at)
    pairs = set(pairs)
    countries = {country for country, _tz in pairs}
    rules = {r.country: r for r in ContactRules.objects.filter(country__in=countries)}
    first = at.date() - dt.timedelta(days=2)
    last = first + dt.timedelta(days=SEARCH_DAYS + 4)
    extra: dict[str, dict[dt.date, str]] = {}
    for country, day, name in Holiday.objects.filter(country__in=countries, date__range=(first, last)).values_list(
        "country", "date", "name"
    ):
        extra.setdefault(country, {})[day] = name
    found = {}
    for country, zone in pairs:
        tz = zone_named(zone)
        local_now = at.astimezone(tz)
        country_rules = rules.get(country)
        if country_rules is None:
            found[(country, zone)] = CallWindow(False, local_now, reason=missing_rules_reason(country))
            continue
        names = holidays_between(country, first, last) if country_rules.skip_holidays else {}
        if country_rules.skip_holidays:
            names.update(extra.get(country, {}))
        window = window_of(country_rules, names)
        if window.contains(at, tz):
            end = window.hours(local_now.date())[1]
            found[(country, zone)] = CallWindow(
                True, local_now, until=local_now.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
            )
        else:
            try:
                opens = next_allowed_moment(at, tz, window).astimezone(tz)
            except NoAllowedMoment:
                opens = None
            found[(country, zone)] = CallWindow(
                False, local_now, opens=opens, reason=_window_reason(at, tz, window, names)
            )
    return found
