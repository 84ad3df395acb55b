"""Hypothesis properties of the money and timing rules: payment allocation conserves every
cent, the ladder picks the right step and never plans one twice, and contact-rule deferral
lands inside the rules and under the 7-day cap for whole sequences of sends.

Database-backed properties run each example in a savepoint that is rolled back, with a modest
number of examples (FUZZ_PROPERTIES raises it for ``make fuzz``); derandomized, so CI sees the
same examples on every run.
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import services
from accounts.models import Invoice, Payment, PaymentAllocation
from cobranza.engine import contact_rules, planner
from cobranza.models import ClientDunning, ContactRules, Holiday, NoticeItem, Policy, PolicyStep
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_PROPERTIES", "0"))
DB_SETTINGS = settings(
    max_examples=EXAMPLES or 15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PURE_SETTINGS = settings(max_examples=EXAMPLES or 60, deadline=None, derandomize=True, database=None)

TODAY = dt.date.today()
CENT = Decimal("0.01")

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2)


class _Rollback(Exception):
    pass


def rolled_back(body):
    """Run ``body()`` in a savepoint and undo it, returning what it returned."""
    result = None
    try:
        with transaction.atomic():
            result = body()
            raise _Rollback
    except _Rollback:
        pass
    return result


# --- payment allocation ----------------------------------------------------------------------


def _assert_conserved(client, payments):
    invoices = list(Invoice.objects.filter(client=client))
    for payment in Payment.objects.filter(pk__in=[p.pk for p in payments]):
        applied = sum(PaymentAllocation.objects.filter(payment=payment).values_list("amount", flat=True), Decimal(0))
        assert applied + payment.unallocated == payment.amount, "a payment lost or created money"
        assert payment.unallocated >= 0
    for invoice in invoices:
        allocated = sum(PaymentAllocation.objects.filter(invoice=invoice).values_list("amount", flat=True), Decimal(0))
        assert allocated == invoice.amount_paid, "amount_paid differs from the allocations"
        assert invoice.amount_paid <= invoice.amount, "an invoice was over-allocated"
        assert invoice.open_balance >= 0
        assert invoice.open_balance == invoice.amount - invoice.amount_paid


@given(
    invoice_amounts=st.lists(money, min_size=1, max_size=4),
    payment_amounts=st.lists(money, min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
)
@DB_SETTINGS
def test_automatic_allocation_conserves_money_and_the_order_of_payments_does_not_change_the_total(
    gerente, invoice_amounts, payment_amounts, order
):
    def record(amounts):
        client = make_client(by=gerente)
        for n, amount in enumerate(invoice_amounts):
            make_invoice(by=gerente, client=client, amount=amount, due_date=TODAY - dt.timedelta(days=40 - n))
        payments = [
            services.payment_record(by=gerente, client=client, amount=amount, received_on=TODAY) for amount in amounts
        ]
        _assert_conserved(client, payments)
        paid = sum(Invoice.objects.filter(client=client).values_list("amount_paid", flat=True), Decimal(0))
        credit = sum((p.unallocated for p in Payment.objects.filter(client=client)), Decimal(0))
        return paid, credit

    shuffled = list(payment_amounts)
    order.shuffle(shuffled)
    first = rolled_back(lambda: record(payment_amounts))
    second = rolled_back(lambda: record(shuffled))
    assert first == second
    owed, received = sum(invoice_amounts), sum(payment_amounts)
    assert first == (min(owed, received), max(received - owed, Decimal(0)))


@given(
    invoice_amounts=st.lists(money, min_size=1, max_size=4),
    amount=money,
    requested=st.lists(
        st.tuples(st.integers(0, 3), st.decimals(min_value=0, max_value=Decimal("60000"), places=2)), max_size=5
    ),
)
@DB_SETTINGS
def test_explicit_allocations_are_applied_in_full_or_refused_with_a_field_error(
    gerente, invoice_amounts, amount, requested
):
    from django.core.exceptions import ValidationError

    def record():
        client = make_client(by=gerente)
        invoices = [
            make_invoice(by=gerente, client=client, amount=a, due_date=TODAY - dt.timedelta(days=10))
            for a in invoice_amounts
        ]
        allocations = [
            services.AllocationRequest(invoice_id=invoices[i % len(invoices)].pk, amount=value)
            for i, value in requested
        ]
        before = (Payment.objects.count(), PaymentAllocation.objects.count())
        try:
            payment = services.payment_record(
                by=gerente, client=client, amount=amount, received_on=TODAY, allocations=allocations
            )
        except ValidationError as exc:
            assert exc.message_dict, "a refusal names its field"
            assert (Payment.objects.count(), PaymentAllocation.objects.count()) == before, "partial write"
            return
        _assert_conserved(client, [payment])
        wanted: dict[int, Decimal] = {}
        for allocation in allocations:
            wanted[allocation.invoice_id] = wanted.get(allocation.invoice_id, Decimal(0)) + allocation.amount
        applied = dict(
            PaymentAllocation.objects.filter(payment=payment).values_list("invoice_id", "amount").order_by("invoice_id")
        )
        assert applied == {k: v for k, v in wanted.items() if v > 0}

    rolled_back(record)


# --- the ladder ------------------------------------------------------------------------------


def expected_step(steps, due: dt.date, day: dt.date):
    """The ladder rule, restated: the highest-position active step whose day has come; a
    pre-due reminder (negative offset) is stale once the invoice is overdue."""
    candidates = [
        (position, offset)
        for position, offset, active in steps
        if active and due + dt.timedelta(days=offset) <= day and not (offset < 0 and due < day)
    ]
    return max(candidates)[0] if candidates else None


# (one step per offset and channel: a database constraint)
ladders = st.lists(
    st.tuples(st.integers(-10, 60), st.booleans()), min_size=1, max_size=5, unique_by=lambda step: step[0]
).map(lambda raw: [(position, offset, active or position == 1) for position, (offset, active) in enumerate(raw, 1)])


@given(
    steps=ladders,
    due_in=st.integers(-40, 20),
    days=st.lists(st.integers(0, 90), min_size=1, max_size=6, unique=True).map(sorted),
)
@DB_SETTINGS
def test_the_planner_picks_the_last_step_that_has_come_never_a_future_one_never_twice(gerente, steps, due_in, days):
    def run():
        policy = Policy.objects.create(name="Escalera generada", tolerance=Decimal("0"))
        by_position = {}
        for position, offset, active in steps:
            by_position[position] = PolicyStep.objects.create(
                policy=policy,
                position=position,
                name=f"Paso {position}",
                offset_days=offset,
                channel="review",
                is_active=active,
                min_overdue_amount=Decimal("0"),
            )
        client = make_client(by=gerente)
        ClientDunning.objects.create(client=client, policy=policy)
        due = TODAY + dt.timedelta(days=due_in)
        invoice = make_invoice(by=gerente, client=client, amount="900.00", due_date=due)
        planned: list[int] = []
        for offset in days:
            day = TODAY + dt.timedelta(days=offset)
            planner.plan(today=day)
            # The steps passed over are recorded as superseded, never sent (docs/domain.md#pacing).
            positions = list(
                NoticeItem.objects.filter(invoice=invoice)
                .exclude(notice__status="superseded")
                .order_by("id")
                .values_list("step__position", flat=True)
            )
            superseded = NoticeItem.objects.filter(invoice=invoice, notice__status="superseded")
            assert not positions or not superseded.filter(step__position__gte=max(positions)).exists()
            new = positions[len(planned) :]
            assert len(new) <= 1, "more than one step planned on one day"
            want = expected_step(steps, due, day)
            if new:
                assert new[0] == want, "not the last step whose day has come"
                step = by_position[new[0]]
                assert due + dt.timedelta(days=step.offset_days) <= day, "a step planned before its day"
            elif want is not None:
                # Nothing new only when that step (or a later one) was planned already.
                assert planned and max(planned) >= want
            planned = positions
        assert len(planned) == len(set(planned)), "a step planned twice"
        assert planned == sorted(planned), "the ladder went back down"

    rolled_back(run)


# --- contact rules -------------------------------------------------------------------------


ZONES = {"MX": "America/Mexico_City", "ES": "Europe/Madrid", "US": "America/New_York"}


def _preset(country: str):
    rules = ContactRules.objects.get(country=country)
    holidays = frozenset(Holiday.objects.filter(country=country).values_list("date", flat=True))
    window = contact_rules.Window(
        start=rules.start_time,
        end=rules.end_time,
        weekdays=contact_rules._weekdays(rules.weekdays),
        holidays=holidays if rules.skip_holidays else frozenset(),
    )
    return window, contact_rules._channel_cap(rules, "email")


def test_a_sequence_of_deferred_sends_stays_inside_the_rules_and_under_the_weekly_cap(db):
    presets = {country: _preset(country) for country in ZONES}
    start = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)

    @given(
        country=st.sampled_from(sorted(ZONES)),
        minutes=st.lists(st.integers(0, 21 * 24 * 60), min_size=1, max_size=12),
    )
    @PURE_SETTINGS
    def check(country, minutes):
        window, cap = presets[country]
        tz = ZoneInfo(ZONES[country])
        requests = [start + dt.timedelta(minutes=m) for m in minutes]
        # As the workers do: each send is decided when asked, and re-checked when its moment
        # comes against every send made by then (claim, re-check, then act).
        pending = [(at, n, at) for n, at in enumerate(requests)]
        heapq.heapify(pending)
        sent: list[tuple[dt.datetime, dt.datetime]] = []
        for _step in range(10 * len(requests) + 10):
            if not pending:
                break
            moment, n, asked = heapq.heappop(pending)
            send_at, _blocks = contact_rules.schedule(moment, tz, window, [s for s, _ in sent], cap)
            if send_at.timestamp() == moment.timestamp():
                sent.append((send_at, asked))
            else:
                assert send_at > moment
                heapq.heappush(pending, (send_at.astimezone(dt.UTC), n, asked))
        assert not pending, "a send was never made (dropped instead of deferred)"
        for send_at, asked in sent:
            assert send_at >= asked, "sent before it was asked for"
            assert window.contains(send_at, tz), f"sent at {send_at.astimezone(tz)}: quiet hours, weekend or holiday"
            in_period = [s for s, _ in sent if send_at - contact_rules.CAP_PERIOD < s <= send_at]
            assert len(in_period) <= cap, "more than the 7-day cap"

    check()


def test_one_deferral_is_the_earliest_allowed_moment_not_just_an_allowed_one(db):
    presets = {country: _preset(country) for country in ZONES}

    @given(country=st.sampled_from(sorted(ZONES)), minute=st.integers(0, 400 * 24 * 60))
    @PURE_SETTINGS
    def check(country, minute):
        window, _cap = presets[country]
        tz = ZoneInfo(ZONES[country])
        at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
        moment = contact_rules.next_allowed_moment(at, tz, window)
        assert moment >= at and window.contains(moment, tz)
        # Every whole minute between the request and the answer is outside the rules.
        probe = at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        while probe < moment and probe < at + dt.timedelta(days=5):
            assert not window.contains(probe, tz), f"{probe.astimezone(tz)} was allowed but skipped"
            probe += dt.timedelta(minutes=37)

    check()
