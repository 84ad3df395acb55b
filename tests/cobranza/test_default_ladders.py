"""The default ladders shipped by migration cobranza 0003, per seeded segment.

Key accounts are softer and slower (a personal call first), sporadic and high-risk clients
escalate faster and firmer; every ladder opens with a courteous pre-due reminder.
"""

import datetime as dt
import functools
import importlib
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from cobranza.engine.planner import plan
from cobranza.models import MESSAGE_CHANNELS, TASK_CHANNELS, MessageTemplate, Notice, Policy, PolicyStep, Tone
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

MIGRATION = ("cobranza", "0003_default_ladders")
SEGMENTS = ("cuenta-clave", "regular", "esporadico", "alto-riesgo")
HANDOFFS = ("review", "agency", "legal")
DUE = dt.date(2026, 3, 2)  # a Monday


def default_ladders_migration():
    return importlib.import_module(f"cobranza.migrations.{MIGRATION[1]}")


@functools.cache
def _historical_apps():
    return MigrationLoader(connection).project_state(MIGRATION).apps


def run_default_ladders() -> None:
    """Run the data migration again on its historical models: idempotent, and it restores
    the data after a transactional test flushed the database."""
    default_ladders_migration().forwards(_historical_apps(), None)


@pytest.fixture
def ladders(db):
    run_default_ladders()
    return {p.segment.code: p for p in Policy.objects.filter(segment__code__in=SEGMENTS).select_related("segment")}


def _steps(policy):
    return list(policy.steps.select_related("template").order_by("position"))


# --- shape of the ladders ------------------------------------------------------------------


def test_each_seeded_segment_has_an_active_policy_with_ordered_steps(ladders):
    assert set(ladders) == set(SEGMENTS)
    for code, policy in ladders.items():
        steps = _steps(policy)
        assert policy.is_active and policy.tolerance == Decimal("10.00"), code
        assert [s.position for s in steps] == list(range(1, len(steps) + 1)), code
        offsets = [s.offset_days for s in steps]
        assert offsets == sorted(set(offsets)), f"{code}: offsets must increase with position: {offsets}"
        assert all(s.is_active and s.name.strip() for s in steps), code


def test_every_ladder_opens_with_a_courteous_pre_due_email(ladders):
    for code, policy in ladders.items():
        first = _steps(policy)[0]
        assert first.offset_days < 0, code
        assert first.channel == "email", code
        assert first.tone == Tone.COURTEOUS and first.template.tone == Tone.COURTEOUS, code
        assert first.template.code == "recordatorio-previo"


def test_message_steps_have_a_template_of_their_channel_and_tasks_none(ladders):
    for code, policy in ladders.items():
        for step in _steps(policy):
            if step.channel in MESSAGE_CHANNELS:
                assert step.template is not None, (code, step.name)
                assert step.template.channel == step.channel, (code, step.name)
                assert {t.language for t in step.template.texts.all()} == {"es", "en"}, (code, step.name)
            else:
                assert step.channel in TASK_CHANNELS
                assert step.template is None, (code, step.name)


def test_tone_never_softens_along_a_ladder(ladders):
    rank = {Tone.COURTEOUS: 0, Tone.FIRM: 1, Tone.FINAL: 2}
    for code, policy in ladders.items():
        tones = [rank[s.tone] for s in _steps(policy)]
        assert tones == sorted(tones), code


def test_hand_offs_to_agency_or_legal_wait_for_approval_and_a_minimum(ladders):
    handoffs = PolicyStep.objects.filter(policy__in=ladders.values(), channel__in=["agency", "legal"])
    assert handoffs.exists()
    for step in handoffs:
        assert step.requires_approval, step.name
        assert step.min_overdue_amount >= Decimal("1000.00"), step.name


def test_key_accounts_are_softer_and_slower_than_the_rest(ladders):
    def first_overdue(code):
        return next(s for s in _steps(ladders[code]) if s.offset_days > 0)

    def first_firm(code):
        return next(s.offset_days for s in _steps(ladders[code]) if s.tone != Tone.COURTEOUS)

    assert first_overdue("cuenta-clave").channel == "call"
    assert first_firm("cuenta-clave") > max(first_firm(c) for c in ("regular", "esporadico", "alto-riesgo"))
    assert not any(s.channel in ("agency", "legal") for s in _steps(ladders["cuenta-clave"]))


def test_running_the_migration_again_changes_nothing(ladders):
    counts = (Policy.objects.count(), PolicyStep.objects.count(), MessageTemplate.objects.count())
    run_default_ladders()
    assert (Policy.objects.count(), PolicyStep.objects.count(), MessageTemplate.objects.count()) == counts


def test_the_migration_restores_an_edited_step(ladders):
    step = PolicyStep.objects.get(policy=ladders["regular"], position=3)
    PolicyStep.objects.filter(pk=step.pk).update(offset_days=9, name="Editado")
    run_default_ladders()
    step.refresh_from_db()
    assert (step.offset_days, step.name, step.channel) == (7, "SMS de seguimiento", "sms")


# --- the ladders at work: time travel through the planner ----------------------------------


def _simulate(days):
    """Plan every day from 10 days before DUE to ``days`` after; return, per client name,
    the (offset, channel) of each notice in order."""
    for offset in range(-10, days + 1):
        plan(today=DUE + dt.timedelta(days=offset))
    seen = {}
    for notice in Notice.objects.select_related("client").order_by("planned_for", "id"):
        seen.setdefault(notice.client.legal_name, []).append(((notice.planned_for - DUE).days, notice.channel))
    return seen


@pytest.fixture
def portfolio(ladders, gerente, gestora):
    def client(name, segment_code, amount):
        c = make_client(by=gerente, collector=gestora, legal_name=name, segment_code=segment_code)
        make_invoice(by=gerente, client=c, number=f"{name.replace(' ', '-')}-1", amount=amount, due_date=DUE)
        return c

    client("Clave", "cuenta-clave", "8000.00")
    client("Regular", "regular", "8000.00")
    client("Esporadico", "esporadico", "8000.00")
    client("Riesgo", "alto-riesgo", "8000.00")
    client("Esporadico chico", "esporadico", "600.00")  # below the agency minimum
    client("Riesgo chico", "alto-riesgo", "900.00")  # below the legal minimum


def test_ninety_days_of_each_ladder_for_an_unpaid_invoice(portfolio):
    seen = _simulate(90)
    assert seen["Clave"] == [(-5, "email"), (3, "call"), (10, "email"), (20, "call"), (35, "review"), (60, "letter")]
    assert seen["Regular"] == [
        (-3, "email"),
        (1, "email"),
        (7, "sms"),
        (15, "call"),
        (30, "email"),
        (45, "email"),
        (60, "review"),
    ]
    assert seen["Esporadico"] == [(-2, "email"), (1, "email"), (4, "sms"), (8, "call"), (15, "email"), (25, "agency")]
    assert seen["Riesgo"] == [
        (-5, "email"),
        (0, "whatsapp"),
        (3, "call"),
        (7, "email"),
        (12, "call"),
        (20, "letter"),
        (30, "legal"),
    ]
    # Hand-offs have a minimum: small balances stay with the collector.
    assert ("agency" not in dict(seen["Esporadico chico"]).values()) and seen["Esporadico chico"][-1] == (15, "email")
    assert seen["Riesgo chico"][-1] == (20, "letter")


def test_key_accounts_get_a_call_first_and_sporadic_clients_reach_an_agency_sooner(portfolio):
    seen = _simulate(90)
    first_overdue = [channel for offset, channel in seen["Clave"] if offset > 0][0]
    assert first_overdue == "call"

    def first_handoff(name):
        return min((offset for offset, channel in seen[name] if channel in HANDOFFS), default=10**6)

    assert first_handoff("Esporadico") < first_handoff("Regular")
    assert dict((c, o) for o, c in seen["Esporadico"])["agency"] == 25
    assert not any(channel in ("agency", "legal") for _o, channel in seen["Regular"])
    assert first_handoff("Riesgo") < first_handoff("Regular")


def test_approval_steps_wait_for_a_person(portfolio):
    _simulate(90)
    waiting = Notice.objects.filter(status=Notice.Status.AWAITING_APPROVAL).values_list("client__legal_name", "channel")
    assert sorted(waiting) == [
        ("Clave", "letter"),
        ("Clave", "review"),
        ("Esporadico", "agency"),
        ("Regular", "review"),
        ("Riesgo", "legal"),
    ]
