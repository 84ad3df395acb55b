"""Contact rules: the debtor's local window, weekdays, holidays and 7-day caps.

The pure core is checked on hand-picked cases (DST days in Madrid and New York included) and
with Hypothesis against a brute-force oracle; ``decide`` on real PostgreSQL with the presets
of migration 0002 and contacts logged on the client's timeline.
"""

import datetime as dt
import importlib
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.engine import jobs as engine
from cobranza.engine.contact_rules import (
    UTC,
    NoAllowedMoment,
    Window,
    cap_frees_at,
    client_time_zone,
    decide,
    next_allowed_moment,
    schedule,
)
from cobranza.models import ContactRules, Holiday, Notice
from tests.factories import client_page_html, make_client, make_invoice

MX = ZoneInfo("America/Mexico_City")
MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
WEEK = dt.timedelta(days=7)
ALL_DAYS = frozenset(range(1, 8))
MX_WINDOW = Window(dt.time(7), dt.time(22))
ES_WINDOW = Window(dt.time(9), dt.time(21), frozenset({1, 2, 3, 4, 5}))

PRESETS = ("cobranza", "0002_contact_rule_presets")


def _at(tz, *args, fold=0):
    return dt.datetime(*args, tzinfo=tz, fold=fold)


# --- The window -----------------------------------------------------------------------------


def test_an_instant_inside_the_window_is_returned_as_is():
    at = _at(MX, 2026, 6, 10, 12, 0, 30)
    assert next_allowed_moment(at, MX, MX_WINDOW) is at


def test_late_evening_moves_to_seven_the_next_morning_local_time():
    at = _at(MX, 2026, 6, 10, 23, 30)
    assert next_allowed_moment(at, MX, MX_WINDOW) == _at(MX, 2026, 6, 11, 7, 0)


def test_early_morning_waits_for_the_window_to_open_the_same_day():
    assert next_allowed_moment(_at(MX, 2026, 6, 10, 5, 15), MX, MX_WINDOW) == _at(MX, 2026, 6, 10, 7, 0)


def test_the_end_of_the_window_is_already_outside():
    assert next_allowed_moment(_at(MX, 2026, 6, 10, 22, 0), MX, MX_WINDOW) == _at(MX, 2026, 6, 11, 7, 0)


def test_the_window_is_read_in_the_debtors_time_zone_not_the_servers():
    at = dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC)  # 10:00 in Mexico City, 18:00 in Madrid
    assert next_allowed_moment(at, MX, MX_WINDOW) == at
    assert next_allowed_moment(at, MADRID, Window(dt.time(9), dt.time(17))) == _at(MADRID, 2026, 6, 11, 9, 0)


def test_spain_skips_the_weekend():
    friday_evening = _at(MADRID, 2026, 6, 12, 21, 30)
    saturday = _at(MADRID, 2026, 6, 13, 11, 0)
    monday_9 = _at(MADRID, 2026, 6, 15, 9, 0)
    assert next_allowed_moment(friday_evening, MADRID, ES_WINDOW) == monday_9
    assert next_allowed_moment(saturday, MADRID, ES_WINDOW) == monday_9


def test_holidays_are_skipped_and_so_are_the_weekdays_after_them():
    window = Window(dt.time(9), dt.time(21), frozenset({1, 2, 3, 4, 5}), frozenset({dt.date(2026, 12, 25)}))
    christmas_eve_late = _at(MADRID, 2026, 12, 24, 21, 5)  # Thursday; Friday is Christmas
    assert next_allowed_moment(christmas_eve_late, MADRID, window) == _at(MADRID, 2026, 12, 28, 9, 0)


def test_it_gives_up_instead_of_looping_when_nothing_is_ever_allowed():
    start = dt.date(2026, 1, 1)
    every_monday = frozenset(
        start + dt.timedelta(days=n) for n in range(400) if (start + dt.timedelta(days=n)).isoweekday() == 1
    )
    window = Window(dt.time(9), dt.time(10), frozenset({1}), every_monday)
    with pytest.raises(NoAllowedMoment):
        next_allowed_moment(_at(MADRID, 2026, 1, 1, 12, 0), MADRID, window)


@pytest.mark.parametrize(
    "start, end, weekdays",
    [
        (dt.time(22), dt.time(7), {1}),  # crosses midnight
        (dt.time(9), dt.time(9), {1}),  # empty
        (dt.time(9), dt.time(21), set()),  # no day at all
        (dt.time(9), dt.time(21), {0, 1}),  # not an ISO weekday
    ],
)
def test_a_window_must_be_a_non_empty_span_within_one_local_day(start, end, weekdays):
    with pytest.raises(ValueError):
        Window(start, end, frozenset(weekdays))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        next_allowed_moment(dt.datetime(2026, 6, 10, 12, 0), MX, MX_WINDOW)


# --- Daylight saving time -------------------------------------------------------------------


def test_madrid_spring_forward_day_opens_at_nine_summer_time():
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    saturday_night = _at(MADRID, 2026, 3, 28, 23, 0)
    result = next_allowed_moment(saturday_night, MADRID, Window(dt.time(9), dt.time(21)))
    assert result == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 at UTC+2


def test_a_window_start_inside_the_spring_forward_gap_opens_at_the_transition():
    # 02:30 does not exist in Madrid on 2026-03-29: the first real instant after it is 03:00 CEST.
    result = next_allowed_moment(_at(MADRID, 2026, 3, 29, 0, 0), MADRID, Window(dt.time(2, 30), dt.time(5)))
    assert result == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert result.astimezone(MADRID).time() == dt.time(3, 0)


def test_a_window_that_lies_entirely_in_the_gap_is_closed_that_day():
    result = next_allowed_moment(_at(MADRID, 2026, 3, 29, 0, 0), MADRID, Window(dt.time(2, 10), dt.time(2, 50)))
    assert result == _at(MADRID, 2026, 3, 30, 2, 10)


def test_madrid_fall_back_repeated_hour_counts_by_local_time():
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET, so 02:00–03:00 happens twice.
    window = Window(dt.time(2, 30), dt.time(4))
    second_two_oclock = _at(MADRID, 2026, 10, 25, 2, 0, fold=1)  # 01:00 UTC, local 02:00: outside
    result = next_allowed_moment(second_two_oclock, MADRID, window)
    assert result == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # the second 02:30
    first_two_forty = _at(MADRID, 2026, 10, 25, 2, 40, fold=0)
    assert next_allowed_moment(first_two_forty, MADRID, window) == first_two_forty


def test_after_the_clocks_go_back_the_window_reopens_at_the_transition():
    window = Window(dt.time(1), dt.time(2, 30))
    first_two_forty = _at(MADRID, 2026, 10, 25, 2, 40, fold=0)  # 00:40 UTC
    # At 01:00 UTC local time falls back to 02:00 CET: inside 01:00–02:30 again.
    assert next_allowed_moment(first_two_forty, MADRID, window) == dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def test_new_york_spring_forward_and_fall_back():
    # 2026-03-08: 02:00 EST → 03:00 EDT. 2026-11-01: 02:00 EDT → 01:00 EST.
    regulation_f = Window(dt.time(8), dt.time(21))
    assert next_allowed_moment(_at(NEW_YORK, 2026, 3, 7, 22, 0), NEW_YORK, regulation_f) == dt.datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )
    assert next_allowed_moment(_at(NEW_YORK, 2026, 10, 31, 22, 0), NEW_YORK, regulation_f) == dt.datetime(
        2026, 11, 1, 13, 0, tzinfo=UTC
    )
    in_gap = Window(dt.time(2, 15), dt.time(4))
    assert next_allowed_moment(_at(NEW_YORK, 2026, 3, 8, 1, 0), NEW_YORK, in_gap) == dt.datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )
    repeated = Window(dt.time(1, 30), dt.time(3))
    second_one_oclock = _at(NEW_YORK, 2026, 11, 1, 1, 0, fold=1)  # 06:00 UTC
    assert next_allowed_moment(second_one_oclock, NEW_YORK, repeated) == dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


# --- The 7-day cap --------------------------------------------------------------------------


def test_under_the_cap_nothing_waits():
    at = dt.datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert cap_frees_at([at - dt.timedelta(days=1), at - dt.timedelta(days=2)], 3, at) is None
    assert cap_frees_at([at - dt.timedelta(days=8)] * 5, 3, at) is None


def test_at_the_cap_it_waits_until_the_oldest_leaves_the_seven_days():
    at = dt.datetime(2026, 6, 10, 12, tzinfo=UTC)
    previous = [at - dt.timedelta(days=6), at - dt.timedelta(days=3), at - dt.timedelta(hours=1)]
    assert cap_frees_at(previous, 3, at) == previous[0] + WEEK
    assert cap_frees_at(previous, 2, at) == previous[1] + WEEK
    assert cap_frees_at(previous, 1, at) == previous[2] + WEEK


def test_cap_and_window_alternate_until_both_hold():
    at = _at(MX, 2026, 6, 10, 12, 0)
    previous = [_at(MX, 2026, 6, 3, 22, 30), _at(MX, 2026, 6, 5, 10), _at(MX, 2026, 6, 8, 10)]
    moment, blocks = schedule(at, MX, MX_WINDOW, previous, 3)
    # The oldest leaves the 7 days at 22:30, after the window closes: next morning at 07:00.
    assert moment == _at(MX, 2026, 6, 11, 7, 0)
    assert [b.rule for b in blocks] == ["cap", "window"]


# --- Property tests against a brute-force oracle -------------------------------------------

ZONES = [
    ZoneInfo(name)
    for name in ("America/Mexico_City", "Europe/Madrid", "America/New_York", "America/Bogota", "America/Santiago")
]
LOW, HIGH = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2028, 6, 30, tzinfo=UTC)


def _offset_changes(tz) -> list[dt.datetime]:
    """Every instant (to the second) at which the zone's UTC offset changes, found by comparing
    noons day by day and bisecting: DST transitions, where the bugs live."""
    found, noon, previous = [], LOW + dt.timedelta(hours=12), None
    while noon < HIGH:
        offset = noon.astimezone(tz).utcoffset()
        if previous is not None and offset != previous:
            lo, hi = int(noon.timestamp()) - 86400, int(noon.timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (
                    (mid, hi)
                    if dt.datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == previous
                    else (lo, mid)
                )
            found.append(dt.datetime.fromtimestamp(hi, UTC))
        previous, noon = offset, noon + dt.timedelta(days=1)
    return found


TRANSITIONS = {tz.key: _offset_changes(tz) for tz in ZONES}
assert len(TRANSITIONS["America/Santiago"]) >= 6 and not TRANSITIONS["America/Bogota"]

PROPERTY = hypothesis_settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _minute_of_day(moment, tz) -> int:
    local = moment.astimezone(tz)
    return local.hour * 60 + local.minute


def _window(start: int, end: int, weekdays=ALL_DAYS, holidays=frozenset()) -> Window:
    return Window(dt.time(start // 60, start % 60), dt.time(end // 60, end % 60), weekdays, holidays)


@st.composite
def cases(draw):
    """Any instant in 2025–2028, any window, weekdays and holidays in the next month."""
    tz = draw(st.sampled_from(ZONES))
    at = LOW + dt.timedelta(seconds=draw(st.integers(0, int((HIGH - LOW).total_seconds()))))
    start = draw(st.integers(0, 1438))
    end = draw(st.integers(start + 1, 1439))
    local_day = at.astimezone(tz).date()
    holidays = draw(st.frozensets(st.integers(-2, 30).map(lambda n: local_day + dt.timedelta(days=n)), max_size=12))
    weekdays = draw(st.frozensets(st.integers(1, 7), min_size=1))
    return at, tz, _window(start, end, weekdays, holidays)


@st.composite
def dst_cases(draw):
    """Instants shortly before a DST transition, with a window that starts near the local
    times the clocks skip or repeat: the cases wall-clock arithmetic gets wrong."""
    tz = draw(st.sampled_from([tz for tz in ZONES if TRANSITIONS[tz.key]]))
    transition = draw(st.sampled_from(TRANSITIONS[tz.key]))
    seconds = st.one_of(st.integers(-2 * 3600, 2 * 3600), st.integers(-30 * 3600, 3 * 3600))
    at = transition + dt.timedelta(seconds=draw(seconds))
    before, after = _minute_of_day(transition - dt.timedelta(seconds=1), tz) + 1, _minute_of_day(transition, tz)
    near = draw(st.sampled_from([before % 1440, after]))
    start = min(max(near + draw(st.integers(-70, 70)), 0), 1438)
    end = min(start + draw(st.integers(1, 240)), 1439)
    return at, tz, _window(start, end)


def _brute_earliest(at, tz, window, ok=lambda moment: True):
    """The earliest instant ≥ at in the window (and satisfying ok), found by trying every
    whole local minute of the window on every allowed day. Enough: outside the window the
    next allowed instant is a window start or a DST transition, both on whole local minutes
    in these zones."""
    if window.contains(at, tz) and ok(at):
        return at
    first = at.astimezone(tz).date() - dt.timedelta(days=1)
    found, found_day = None, None
    start = window.start.hour * 60 + window.start.minute
    end = window.end.hour * 60 + window.end.minute
    for n in range(60):
        day = first + dt.timedelta(days=n)
        if found_day is not None and day > found_day + dt.timedelta(days=1):
            break
        if not window.allows_day(day):
            continue
        for minute in range(start, end):
            for fold in (0, 1):
                local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=tz).replace(fold=fold)
                instant = local.astimezone(UTC)
                if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                    continue  # a local time skipped by the clocks
                if instant > at and (found is None or instant < found) and ok(instant):
                    found = instant
                    found_day = found_day or day
    return found


def _assert_allowed(result, at, tz, window):
    assert result >= at
    local = result.astimezone(tz)
    assert window.start <= local.time() < window.end
    assert local.isoweekday() in window.weekdays
    assert local.date() not in window.holidays


@PROPERTY
@given(st.one_of(cases(), dst_cases()))
def test_next_allowed_moment_is_the_earliest_allowed_instant(case):
    at, tz, window = case
    result = next_allowed_moment(at, tz, window)  # holidays span a month: something is always allowed
    _assert_allowed(result, at, tz, window)
    assert result == _brute_earliest(at, tz, window)


@PROPERTY
@given(dst_cases())
def test_next_allowed_moment_is_the_earliest_allowed_instant_across_dst_transitions(case):
    at, tz, window = case
    result = next_allowed_moment(at, tz, window)
    _assert_allowed(result, at, tz, window)
    assert result == _brute_earliest(at, tz, window)


@PROPERTY
@given(st.one_of(cases(), dst_cases()), st.lists(st.integers(0, 8 * 24 * 60), max_size=8), st.integers(1, 4))
def test_with_a_cap_the_moment_is_allowed_under_the_cap_and_the_earliest_such(case, minutes_ago, cap):
    at, tz, window = case
    whole_minute = at.replace(second=0, microsecond=0)
    previous = sorted(whole_minute - dt.timedelta(minutes=m) for m in minutes_ago)

    def under_cap(moment):
        return sum(1 for p in previous if moment - WEEK < p <= moment) < cap

    result, blocks = schedule(at, tz, window, previous, cap)
    _assert_allowed(result, at, tz, window)
    assert under_cap(result)
    assert (result == at) == (not blocks)
    assert result == _brute_earliest(at, tz, window, under_cap)


# --- decide(), on the database --------------------------------------------------------------


def _presets():
    """Migration 0002's data, re-applied (idempotent): a transactional test elsewhere may
    have flushed it."""
    migration = importlib.import_module(f"cobranza.migrations.{PRESETS[1]}")
    migration.forwards(MigrationLoader(connection).project_state(PRESETS).apps, None)


@pytest.fixture
def presets(db):
    _presets()


def _log(client, kind, when, *, direction=Interaction.Direction.OUTBOUND):
    return ledger.interaction_log(
        by=None,
        client=client,
        kind=kind,
        direction=direction,
        summary=f"{kind} {when:%Y-%m-%d %H:%M}",
        occurred_at=when,
    )


@pytest.fixture
def mexican(presets, gerente):
    return make_client(by=gerente, legal_name="Abarrotes del Centro", country="MX", time_zone="America/Mexico_City")


@pytest.fixture
def spanish(presets, gerente):
    return make_client(by=gerente, legal_name="Ferretería Castilla S.L.", country="ES", time_zone="Europe/Madrid")


@pytest.fixture
def american(presets, gerente):
    return make_client(by=gerente, legal_name="Acme Supplies LLC", country="US", time_zone="America/New_York")


@pytest.mark.django_db
def test_the_migration_ships_the_three_presets_with_their_legal_basis(presets):
    rules = {r.country: r for r in ContactRules.objects.all()}
    assert {"MX", "ES", "US"} <= set(rules)
    mx, es, us = rules["MX"], rules["ES"], rules["US"]
    assert (mx.start_time, mx.end_time, mx.weekdays, mx.max_per_channel_7d, mx.skip_holidays) == (
        dt.time(7),
        dt.time(22),
        "1,2,3,4,5,6,7",
        3,
        True,
    )
    assert (es.start_time, es.end_time, es.weekdays, es.skip_holidays) == (dt.time(9), dt.time(21), "1,2,3,4,5", True)
    assert (us.start_time, us.end_time, us.max_calls_7d, us.max_per_channel_7d) == (dt.time(8), dt.time(21), 7, 3)
    assert "CONDUSEF" in mx.notes and "Regulation F" in us.notes and "RGPD" in es.notes
    assert all("asesor legal" in r.notes for r in (mx, es, us))


@pytest.mark.django_db
def test_the_migration_ships_national_holidays_with_their_movable_dates(presets):
    _presets()  # twice: idempotent
    days = {(h.country, h.date): h.name for h in Holiday.objects.all()}
    assert days[("MX", dt.date(2026, 2, 2))] == "Día de la Constitución"  # first Monday of February
    assert days[("MX", dt.date(2027, 3, 15))] == "Natalicio de Benito Juárez"  # third Monday of March
    assert days[("MX", dt.date(2026, 11, 16))] == "Día de la Revolución"
    assert days[("ES", dt.date(2026, 4, 3))] == days[("ES", dt.date(2027, 3, 26))] == "Viernes Santo"
    assert days[("US", dt.date(2026, 11, 26))] == "Día de Acción de Gracias"
    assert days[("US", dt.date(2026, 7, 3))].startswith("Día de la Independencia")  # 4 July is a Saturday
    assert ("MX", dt.date(2026, 10, 1)) not in days  # the inauguration holiday is 2030's
    per_country = {c: sum(1 for (cc, d) in days if cc == c and d.year in (2026, 2027)) for c in ("MX", "ES", "US")}
    assert per_country == {"MX": 15, "ES": 20, "US": 27}


@pytest.mark.django_db
def test_a_mexican_client_at_half_past_eleven_at_night_gets_seven_the_next_morning(mexican):
    decision = decide(client=mexican, channel="email", at=_at(MX, 2026, 6, 10, 23, 30))
    assert not decision.allowed
    assert decision.send_at == _at(MX, 2026, 6, 11, 7, 0)
    assert decision.reason == "Fuera del horario permitido (07:00–22:00, America/Mexico_City)"


@pytest.mark.django_db
def test_a_contact_inside_the_rules_goes_now(mexican):
    at = _at(MX, 2026, 6, 10, 10, 0)
    assert decide(client=mexican, channel="whatsapp", at=at) == decide(client=mexican, channel="sms", at=at)
    decision = decide(client=mexican, channel="email", at=at)
    assert (decision.allowed, decision.send_at, decision.reason) == (True, at, "")


@pytest.mark.django_db
def test_a_spanish_client_on_saturday_waits_for_monday_nine_in_madrid(spanish):
    decision = decide(client=spanish, channel="email", at=_at(MADRID, 2026, 6, 13, 11, 0))
    assert decision.send_at == _at(MADRID, 2026, 6, 15, 9, 0)
    assert decision.reason == "Fin de semana (no se contacta sábados ni domingos)"


@pytest.mark.django_db
def test_a_holiday_defers_with_its_name(spanish):
    decision = decide(client=spanish, channel="sms", at=_at(MADRID, 2026, 12, 8, 10, 0))  # a Tuesday
    assert decision.send_at == _at(MADRID, 2026, 12, 9, 9, 0)
    assert decision.reason == "Día festivo: Inmaculada Concepción"


@pytest.mark.django_db
def test_three_emails_in_seven_days_defer_the_fourth_until_the_oldest_leaves(mexican):
    for when in [_at(MX, 2026, 6, 4, 10, 15), _at(MX, 2026, 6, 6, 11), _at(MX, 2026, 6, 9, 9)]:
        _log(mexican, "email", when)
    # Neither inbound mail, other channels nor internal notes count towards the email cap.
    _log(mexican, "email", _at(MX, 2026, 6, 9, 12), direction=Interaction.Direction.INBOUND)
    _log(mexican, "sms", _at(MX, 2026, 6, 9, 12))
    _log(mexican, "system", _at(MX, 2026, 6, 9, 12), direction=Interaction.Direction.INTERNAL)
    decision = decide(client=mexican, channel="email", at=_at(MX, 2026, 6, 10, 12, 0))
    assert not decision.allowed
    assert decision.send_at == _at(MX, 2026, 6, 11, 10, 15)
    assert decision.reason == "Límite de 3 correos en 7 días alcanzado"
    assert decide(client=mexican, channel="sms", at=_at(MX, 2026, 6, 10, 12, 0)).allowed


@pytest.mark.django_db
def test_when_the_cap_frees_outside_the_window_the_send_moves_into_it(mexican):
    for when in [_at(MX, 2026, 6, 3, 21, 50), _at(MX, 2026, 6, 6, 11), _at(MX, 2026, 6, 9, 9)]:
        _log(mexican, "email", when)
    at = _at(MX, 2026, 6, 10, 21, 55)
    assert decide(client=mexican, channel="email", at=at).allowed  # the oldest left at 21:50
    _log(mexican, "email", _at(MX, 2026, 6, 3, 22, 5))
    decision = decide(client=mexican, channel="email", at=at)
    # Three in the 7 days until 22:05, when the window has closed: 07:00 the next day.
    assert decision.send_at == _at(MX, 2026, 6, 11, 7, 0)
    assert decision.reason == (
        "Límite de 3 correos en 7 días alcanzado; Fuera del horario permitido (07:00–22:00, America/Mexico_City)"
    )


@pytest.mark.django_db
def test_a_letter_is_never_deferred_and_costs_no_query(mexican, django_assert_num_queries):
    for day in range(4, 10):
        _log(mexican, "letter", _at(MX, 2026, 6, day, 10))
    at = _at(MX, 2026, 6, 13, 3, 0)  # a Saturday, at three in the morning
    with django_assert_num_queries(0):
        decision = decide(client=mexican, channel="letter", at=at)
        assert decide(client=mexican, channel="review", at=at).allowed
    assert (decision.allowed, decision.send_at) == (True, at)


@pytest.mark.django_db
def test_a_us_debtors_eighth_call_attempt_in_seven_days_is_deferred(american):
    attempts = [_at(NEW_YORK, 2026, 6, day, 9, 30) for day in range(1, 8)]  # 1–7 June, one a day
    for when in attempts[:6]:
        _log(american, "call", when)
    at = _at(NEW_YORK, 2026, 6, 7, 15, 0)
    assert decide(client=american, channel="call", at=at).allowed  # the 7th attempt
    _log(american, "call", attempts[6])
    decision = decide(client=american, channel="call", at=at)
    assert not decision.allowed
    assert decision.send_at == attempts[0] + WEEK  # 8 June 09:30, inside 08:00–21:00
    assert decision.reason == "Límite de 7 llamadas en 7 días alcanzado"


@pytest.mark.django_db
def test_a_country_without_rules_is_held_with_a_reason_never_given_another_countrys(presets, gerente):
    # Before, a Venezuelan client silently got Mexico's hours and no holidays at all.
    ContactRules.objects.filter(country="VE").delete()
    venezuelan = make_client(by=gerente, country="VE", time_zone="America/Caracas")
    at = _at(ZoneInfo("America/Caracas"), 2026, 6, 10, 11, 0)  # a Wednesday morning
    decision = decide(client=venezuelan, channel="email", at=at)
    assert not decision.allowed
    assert decision.send_at == at + dt.timedelta(days=1)  # held, looked at again tomorrow
    assert "No hay reglas de contacto para el país VE" in decision.reason
    assert decide(client=venezuelan, channel="letter", at=at).allowed  # letters are not ruled


@pytest.mark.django_db
def test_every_spanish_speaking_market_has_rules_and_its_national_holidays(gerente):
    bogota = ZoneInfo("America/Bogota")
    for country in ("MX", "CO", "CL", "PE", "AR", "EC", "GT", "CR", "DO", "UY", "ES", "US"):
        assert ContactRules.objects.filter(country=country).exists(), country
    colombian = make_client(by=gerente, country="CO", time_zone="America/Bogota")
    # 20 July, Colombia's independence day (from the holidays package, not a hand-typed row).
    decision = decide(client=colombian, channel="email", at=_at(bogota, 2026, 7, 20, 10, 0))
    assert decision.send_at == _at(bogota, 2026, 7, 21, 7, 0)
    assert decision.reason.startswith("Día festivo: ")
    # Saturday has its own hours (08:00–15:00); Sunday none; Monday 15 June is the Sacred Heart
    # (moved to a Monday by Colombia's Ley Emiliani, which the package knows).
    decision = decide(client=colombian, channel="email", at=_at(bogota, 2026, 6, 13, 16, 0))
    assert decision.send_at == _at(bogota, 2026, 6, 16, 7, 0)
    assert decision.reason == "Fuera del horario permitido (08:00–15:00, America/Bogota)"
    assert decide(client=colombian, channel="email", at=_at(bogota, 2026, 6, 13, 14, 59)).allowed


@pytest.mark.django_db
def test_colombia_allows_one_contact_a_week_per_channel_and_two_in_all(gerente):
    bogota = ZoneInfo("America/Bogota")
    colombian = make_client(by=gerente, country="CO", time_zone="America/Bogota")
    tuesday = _at(bogota, 2026, 6, 2, 9, 0)
    _log(colombian, "email", tuesday)
    decision = decide(client=colombian, channel="email", at=tuesday + dt.timedelta(hours=2))
    assert decision.send_at == tuesday + WEEK
    assert decision.reason == "Límite de 1 correo en 7 días alcanzado"
    assert decide(client=colombian, channel="sms", at=tuesday + dt.timedelta(hours=2)).allowed
    _log(colombian, "sms", tuesday + dt.timedelta(hours=2))
    decision = decide(client=colombian, channel="whatsapp", at=tuesday + dt.timedelta(days=1))
    assert decision.send_at == tuesday + WEEK
    assert decision.reason == "Límite de 2 contactos en 7 días (todos los canales) alcanzado"


@pytest.mark.django_db
def test_decide_costs_the_same_queries_however_many_contacts(spanish, django_assert_num_queries):
    at = _at(MADRID, 2026, 6, 10, 12, 0)
    with django_assert_num_queries(3):  # rules, holidays, recent contacts
        decide(client=spanish, channel="email", at=at)
    for hour in range(9, 19):
        _log(spanish, "email", _at(MADRID, 2026, 6, 9, hour))
    with django_assert_num_queries(3):
        decision = decide(client=spanish, channel="email", at=at)
    assert decision.send_at == _at(MADRID, 2026, 6, 16, 16, 0)  # the 8th oldest leaves at 16:00


def test_an_invalid_time_zone_falls_back_to_the_company_one(settings):
    class Client:
        time_zone = "Mars/Olympus_Mons"

    settings.TIME_ZONE = "Europe/Madrid"
    assert client_time_zone(Client()) == MADRID
    Client.time_zone = ""
    assert client_time_zone(Client()) == MADRID
    Client.time_zone = "America/Santiago"
    assert client_time_zone(Client()) == ZoneInfo("America/Santiago")


@pytest.mark.django_db
def test_the_database_refuses_a_window_that_crosses_midnight():
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactRules.objects.create(country="AR", name="Noche", start_time=dt.time(22), end_time=dt.time(7))


@pytest.mark.django_db
def test_a_client_in_a_country_without_rules_is_warned_about_and_its_reminder_held(gerente, client):
    ContactRules.objects.filter(country="VE").delete()
    venezuelan = make_client(
        by=gerente, legal_name="Inversiones Caracas C.A.", country="VE", time_zone="America/Caracas"
    )
    ledger.contact_create(by=gerente, client=venezuelan, name="Pagos", email="pagos@caracas.example")
    today = dt.date(2026, 6, 10)
    make_invoice(by=gerente, client=venezuelan, due_date=today + dt.timedelta(days=3), amount="900.00")

    client.force_login(gerente)
    page = client_page_html(client, venezuelan.pk)
    assert 'data-testid="missing-contact-rules"' in page
    assert "No hay reglas de contacto para el país VE" in page

    engine.run(today=today)
    notice = Notice.objects.get(client=venezuelan)
    assert (notice.status, notice.deferrals, notice.sent_at) == (Notice.Status.PLANNED, 1, None)
    assert notice.reason.startswith("No hay reglas de contacto para el país VE")
    assert Interaction.objects.filter(client=venezuelan, summary__contains="No hay reglas de contacto").exists()

    # Once the country has rules, the warning goes and the reminder goes out.
    ContactRules.objects.create(
        country="VE", name="Venezuela", start_time=dt.time(8), end_time=dt.time(19), weekdays="1,2,3,4,5"
    )
    page = client_page_html(client, venezuelan.pk)
    assert 'data-testid="missing-contact-rules"' not in page
    engine.run(today=today + dt.timedelta(days=1))
    notice.refresh_from_db()
    assert notice.status == Notice.Status.SENT
