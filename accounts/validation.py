"""A model's check constraints validated in one query instead of one query each.

Django validates each ``CheckConstraint`` of a model by asking the database (``Q.check``): one
``SELECT`` per constraint, each inside a savepoint when a transaction is open — for an invoice
with eight checks, twenty-four round trips before the row is written. Every single-row write
(services, forms, API) validates this way (``accounts.services._full_clean``), so the checks
are what such a write mostly waits on.

``OneQueryConstraints`` is an abstract base for models: its ``validate_constraints`` asks the
same questions, in the same terms (each condition against the instance's values, NULL counting
as passed, a condition on an excluded field skipped; if the database cannot evaluate one, the
conditions are asked one by one as Django asks them), as one ``SELECT`` with a column per
constraint, and reports the errors exactly as Django would, in the same order. The other
constraints (unique ones) keep Django's own validation. ``tests/accounts/test_validation.py``
checks both ways agree on every such model. The query is compiled once per shape and reused
with each write's values (below).

Its ``clean_fields`` also skips the existence query of a foreign key whose object was read
from the database (``loaded_foreign_keys``): one query per key per write, which can only pass.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from django.core.exceptions import FieldError, ValidationError
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import BooleanField, CheckConstraint, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce
from django.db.models.sql import Query
from django.db.models.sql.constants import SINGLE

logger = logging.getLogger(__name__)


# --- the one query, compiled once per shape ----------------------------------------------------
#
# Building and compiling the query was most of what a write's validation cost in Python. Its
# SQL depends only on the model, the excluded fields and which values are NULL (Django writes
# those as NULL, the others as parameters), so it is compiled once per such shape with a
# placeholder for each field's value, and each write fills in its own values, prepared as
# Django's ``Value`` prepares them (``get_db_prep_value``). A value that is an expression (an
# ``F()`` in a field) takes the uncached way, as do fields with a placeholder of their own.


class _Param:
    """A parameter of a compiled check query that stands for one field's value."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Slot(Value):
    """A field's value in a compiled check query: a placeholder filled in per instance."""

    def as_sql(self, compiler, connection):
        return "%s", [_Param(self.value)]


_COMPILED: dict[tuple, tuple[str, list, list]] = {}
_COMPILED_MAX = 2000  # shapes kept; the cache starts again past this


def _prepared_values(instance: models.Model, meta, exclude, connection) -> dict | None:
    """What ``Model._get_field_expression_map`` would put in a ``Value`` for each field (and
    ``pk``), prepared for the database; None when a field holds an expression instead."""
    values = {}
    for field in meta.local_concrete_fields:
        if field.name in exclude or field.generated:
            continue
        if hasattr(field, "get_placeholder"):
            return None
        value = getattr(instance, field.attname)
        if value and hasattr(value, "resolve_expression"):
            return None
        values[field.name] = field.get_db_prep_value(value, connection=connection)
    if "pk" not in exclude:
        values["pk"] = meta.pk.get_db_prep_value(instance.pk, connection=connection)
    return values


def _compile(instance, model_class, checks, exclude, values: dict, using: str) -> tuple[str, list, list]:
    """The check query of this shape: its SQL, its parameters (``_Param`` where a value goes)
    and the constraints it asks, in column order. The field map is built as Django's
    ``_get_field_expression_map`` builds it, generated fields included."""
    meta = model_class._meta
    by_name = {field.name: field for field in meta.local_concrete_fields}
    field_map = {}
    for name, value in values.items():
        field = meta.pk if name == "pk" else by_name[name]
        field_map[name] = Value(None, field) if value is None else _Slot(name, field)
    generated = [f for f in meta.local_concrete_fields if f.generated and f.name not in exclude]
    if generated:
        replacements = {F(name): expression for name, expression in field_map.items()}
        for field in generated:
            if any(ref[0] in exclude for ref in instance._get_expr_references(field.expression)):
                continue
            field_map[field.name] = ExpressionWrapper(
                field.expression.replace_expressions(replacements), field.output_field
            )
    query = Query(None)
    for name, expression in field_map.items():
        query.add_annotation(expression, name, select=False)
    asked = _add_checks(query, checks)
    if not asked:
        return "", [], []
    sql, params = query.get_compiler(using=using).as_sql()
    return sql, list(params), asked


def failed_checks(instance: models.Model, exclude=None, *, using: str | None = None) -> set[int]:
    """The ``id()`` of each check constraint of ``instance``'s model (and its parents) that its
    current values break (constraints compare by value and are not hashable), asked in one
    query per model class."""
    using = using or router.db_for_write(type(instance), instance=instance)
    connection = connections[using]
    failed: set[int] = set()
    excluded = set(exclude or ())
    for model_class, constraints in instance.get_constraints():
        checks = [c for c in constraints if type(c) is CheckConstraint]
        if not checks:
            continue
        values = _prepared_values(instance, model_class._meta, excluded, connection)
        if values is not None:
            nulls = frozenset(name for name, value in values.items() if value is None)
            key = (model_class, tuple(c.name for c in checks), using, frozenset(excluded), nulls)
            compiled = _COMPILED.get(key)
            if compiled is None:
                if len(_COMPILED) >= _COMPILED_MAX:
                    _COMPILED.clear()
                compiled = _COMPILED[key] = _compile(instance, model_class, checks, excluded, values, using)
            sql, template, asked = compiled
            params = [values[p.name] if type(p) is _Param else p for p in template]

            def ask(sql=sql, params=params):
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchone()

        else:
            query, asked = _query(instance, model_class, checks, exclude)

            def ask(query=query):
                return query.get_compiler(using=using).execute_sql(SINGLE)

        if not asked:
            continue
        savepoint = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
        try:
            with savepoint:
                row = ask()
        except DatabaseError as exc:
            # One condition the database cannot evaluate on these values must not excuse the
            # others: ask them one by one, as Django does (which takes that one as passed).
            logger.info("Checking the constraints of %r one by one after: %s", model_class, exc)
            for constraint in asked:
                try:
                    constraint.validate(model_class, instance, exclude=exclude, using=using)
                except ValidationError:
                    failed.add(id(constraint))
            continue
        failed.update(id(constraint) for constraint, passed in zip(asked, row, strict=True) if not passed)
    return failed


def _add_checks(query: Query, checks: list) -> list:
    """A column per check condition (NULL counting as passed); the constraints asked."""
    asked = []
    for n, constraint in enumerate(checks):
        try:
            query.add_annotation(Coalesce(Q(constraint.condition), True, output_field=BooleanField()), f"_check_{n}")
        except FieldError:
            continue  # a condition on an excluded field is not checked (as Django)
        asked.append(constraint)
    return asked


def _query(instance, model_class, checks, exclude) -> tuple[Query, list]:
    """The check query built for this instance alone (a field holds an expression)."""
    against = instance._get_field_expression_map(meta=model_class._meta, exclude=exclude)
    query = Query(None)
    for name, value in against.items():
        query.add_annotation(value if hasattr(value, "resolve_expression") else Value(value), name, select=False)
    asked = _add_checks(query, checks)
    return query, asked


def validate_constraints(instance: models.Model, exclude=None) -> None:
    """``Model.validate_constraints`` with the check constraints asked in one query: the same
    ``ValidationError`` (same keys, messages, codes and order) as Django's."""
    using = router.db_for_write(type(instance), instance=instance)
    broken = failed_checks(instance, exclude, using=using)
    errors: dict = {}
    for model_class, constraints in instance.get_constraints():
        for constraint in constraints:
            try:
                if type(constraint) is CheckConstraint:
                    if id(constraint) in broken:
                        raise ValidationError(
                            constraint.get_violation_error_message(), code=constraint.violation_error_code
                        )
                else:
                    constraint.validate(model_class, instance, exclude=exclude, using=using)
            except ValidationError as exc:
                if getattr(exc, "code", None) == "unique" and len(constraint.fields) == 1:
                    errors.setdefault(constraint.fields[0], []).append(exc)
                else:
                    errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def loaded_foreign_keys(instance: models.Model) -> set[str]:
    """The foreign keys of ``instance`` that hold an object read from the database (the
    services pass model instances, not ids) and have no ``limit_choices_to``: Django's check
    that the referenced row exists is one query each and can only pass. A row deleted in the
    meantime still fails the write, on the database's own foreign key."""
    loaded = set()
    for field in instance._meta.concrete_fields:
        if not field.many_to_one or field.get_limit_choices_to() or not field.is_cached(instance):
            continue
        related = field.get_cached_value(instance)
        if related is not None and not related._state.adding and related.pk == getattr(instance, field.attname):
            loaded.add(field.name)
    return loaded


class OneQueryConstraints(models.Model):
    """Abstract base: the model's check constraints are validated in one query, and a foreign
    key that holds a loaded object is not looked up again (see above)."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        super().clean_fields(exclude={*(exclude or ()), *loaded_foreign_keys(self)})

    def validate_constraints(self, exclude=None):
        validate_constraints(self, exclude)
