"""The check constraints asked in one query (accounts/validation.py) give the errors Django's
own per-constraint validation gives, on every model that uses it, for values that break and
keep each constraint — and cost one query where Django's cost one per constraint."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.db.models import CheckConstraint, Q
from django.test.utils import CaptureQueriesContext

from accounts import validation
from accounts.models import Invoice
from accounts.validation import OneQueryConstraints
from tests.factories import make_client

pytestmark = pytest.mark.django_db

MODELS = sorted((m for m in apps.get_models() if issubclass(m, OneQueryConstraints)), key=lambda m: m._meta.label)
UTC = dt.UTC


def _candidates(field) -> list:
    """Values that keep or break the usual conditions on a field (signs, order, choices)."""
    nullable = [None] if field.null else []
    if field.choices:
        return [*nullable, *(value for value, _label in field.flatchoices), "zz"]
    if isinstance(field, models.BooleanField):
        return [True, False]
    if isinstance(field, models.DecimalField):
        return [*nullable, Decimal("-5.00"), Decimal("0"), Decimal("0.01"), Decimal("250.00"), Decimal("99999.99")]
    if isinstance(field, models.IntegerField | models.FloatField):
        return [*nullable, -3, 0, 1, 7, 400]
    if isinstance(field, models.DateTimeField):
        return [*nullable, *(dt.datetime(2026, m, 15, 12, tzinfo=UTC) for m in (1, 6, 12))]
    if isinstance(field, models.DateField):
        return [*nullable, dt.date(2026, 1, 1), dt.date(2026, 6, 30), dt.date(2026, 12, 31)]
    if isinstance(field, models.TimeField):
        return [*nullable, dt.time(7), dt.time(13), dt.time(22)]
    if isinstance(field, models.ForeignKey):
        return [*nullable, 1, 2]
    if isinstance(field, models.CharField | models.TextField):
        return ["", "x", "  ", "ABC-1"]
    return []


def _instances(model, rng: random.Random, n: int):
    fields = list(model._meta.concrete_fields)
    for _ in range(n):
        obj = model()
        for field in fields:
            values = _candidates(field)
            if values and rng.random() < 0.8:
                setattr(obj, field.attname, rng.choice(values))
        yield obj


def _errors(call) -> dict | None:
    try:
        call()
    except ValidationError as exc:
        return {key: [(e.message % (e.params or {}), e.code) for e in errors] for key, errors in exc.error_dict.items()}
    return None


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_one_query_gives_the_errors_django_gives(model):
    rng = random.Random(model._meta.label)
    checks = [c for c in model._meta.constraints if isinstance(c, CheckConstraint)]
    assert checks, "the base is for models with check constraints"
    fields = [f.name for f in model._meta.concrete_fields]
    outcomes = set()
    for obj in _instances(model, rng, 40):
        exclude = set(rng.sample(fields, k=min(2, len(fields)))) if rng.random() < 0.25 else None
        with transaction.atomic():
            ours = _errors(lambda obj=obj, exclude=exclude: obj.validate_constraints(exclude=exclude))
            django = _errors(lambda obj=obj, exclude=exclude: models.Model.validate_constraints(obj, exclude=exclude))
        assert ours == django, (model._meta.label, exclude, {f: getattr(obj, f) for f in fields})
        outcomes.add(repr(ours))
    # The sample is not vacuous: the instances break the checks in different ways (one check:
    # some break it, some keep it).
    assert len(outcomes - {"None"}) >= min(2, len(checks)), (model._meta.label, outcomes)
    assert len(checks) > 1 or "None" in outcomes, (model._meta.label, outcomes)


def test_the_checks_of_an_invoice_cost_one_query_where_django_asks_one_each():
    invoice = Invoice(amount=Decimal("-1"), currency="MXN", number="F-1", client_id=1)
    checks = sum(isinstance(c, CheckConstraint) for c in Invoice._meta.constraints)
    assert checks >= 5
    with transaction.atomic():
        with CaptureQueriesContext(connection) as ours, pytest.raises(ValidationError):
            invoice.validate_constraints()
        with CaptureQueriesContext(connection) as django, pytest.raises(ValidationError):
            models.Model.validate_constraints(invoice)
    selects = [q for q in ours.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(selects) == 1
    assert len([q for q in django.captured_queries if "SAVEPOINT" not in q["sql"]]) == checks


def test_a_loaded_foreign_key_is_not_looked_up_again_and_a_missing_one_is_still_an_error(gerente):
    client = make_client(by=gerente)
    invoice = Invoice(client=client, number="F-9", currency="MXN", amount=Decimal("10"), issue_date=dt.date(2026, 1, 1))
    invoice.due_date = invoice.issue_date
    with CaptureQueriesContext(connection) as ctx:
        invoice.full_clean(exclude=["open_balance"])
    assert not [q for q in ctx.captured_queries if 'FROM "accounts_client"' in q["sql"]]

    orphan = Invoice(
        client_id=client.pk + 1000, number="F-10", currency="MXN", amount=Decimal("10"), issue_date=dt.date(2026, 1, 1)
    )
    orphan.due_date = orphan.issue_date
    with pytest.raises(ValidationError) as raised:
        orphan.full_clean(exclude=["open_balance"])
    assert "client" in raised.value.error_dict


def test_when_the_database_cannot_answer_the_one_query_the_checks_are_asked_one_by_one():
    """A condition PostgreSQL cannot evaluate on some value fails the whole combined query; the
    other conditions must still be checked (Django asks each alone and excuses only that one)."""

    def refuse_the_combined_query(execute, sql, params, many, context):
        if "_check_1" in sql:
            raise DatabaseError("cannot evaluate")
        return execute(sql, params, many, context)

    invoice = Invoice(
        amount=Decimal("-1"),
        amount_paid=Decimal("0"),
        status="open",
        currency="MXN",
        number="F-11",
        client_id=1,
        issue_date=dt.date(2026, 3, 1),
        due_date=dt.date(2026, 2, 1),
    )
    with transaction.atomic(), connection.execute_wrapper(refuse_the_combined_query):
        ours = _errors(invoice.validate_constraints)
    with transaction.atomic():
        django = _errors(lambda: models.Model.validate_constraints(invoice))
    assert ours == django
    assert len(ours["__all__"]) >= 2  # the amount and the dates, both still reported


def test_the_query_is_compiled_once_per_shape_and_a_generated_field_is_checked_too(monkeypatch):
    """The SQL is compiled once per model, exclusions and NULL values, then reused with each
    write's values; a condition on a generated field (none of ours has one yet) sees the value
    computed from the instance's other values, as Django's validation does."""
    assert isinstance(Invoice._meta.get_field("open_balance"), models.GeneratedField)
    on_generated = CheckConstraint(condition=Q(open_balance__lte=Decimal("100")), name="test_open_balance_at_most_100")
    monkeypatch.setattr(Invoice._meta, "constraints", [*Invoice._meta.constraints, on_generated])
    monkeypatch.setattr(validation, "_COMPILED", {})
    base = {"currency": "MXN", "number": "F-12", "client_id": 1, "status": "open"}
    base.update(issue_date=dt.date(2026, 3, 1), due_date=dt.date(2026, 4, 1))
    outcomes = []
    for amount, paid in [("150", "0"), ("150", "60"), ("90", "0"), ("500", "390"), ("500", "450")]:
        invoice = Invoice(amount=Decimal(amount), amount_paid=Decimal(paid), **base)
        with transaction.atomic():
            ours = _errors(invoice.validate_constraints)
            django = _errors(lambda invoice=invoice: models.Model.validate_constraints(invoice))
        assert ours == django, (amount, paid, ours, django)
        outcomes.append(on_generated.name in repr(ours))
    assert outcomes == [True, False, False, True, False]  # over 100 left to pay, or not
    assert len(validation._COMPILED) == 1  # five writes of one shape, one compilation
