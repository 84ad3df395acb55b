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
checks both ways agree on every such model.

Its ``clean_fields`` also skips the existence query of a foreign key whose object was read
from the database (``loaded_foreign_keys``): one query per key per write, which can only pass.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from django.core.exceptions import FieldError, ValidationError
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import BooleanField, CheckConstraint, Q, Value
from django.db.models.functions import Coalesce
from django.db.models.sql import Query
from django.db.models.sql.constants import SINGLE

logger = logging.getLogger(__name__)


def failed_checks(instance: models.Model, exclude=None, *, using: str | None = None) -> set[int]:
    """The ``id()`` of each check constraint of ``instance``'s model (and its parents) that its
    current values break (constraints compare by value and are not hashable), asked in one
    query per model class."""
    using = using or router.db_for_write(type(instance), instance=instance)
    connection = connections[using]
    failed: set[int] = set()
    for model_class, constraints in instance.get_constraints():
        checks = [c for c in constraints if type(c) is CheckConstraint]
        if not checks:
            continue
        against = instance._get_field_expression_map(meta=model_class._meta, exclude=exclude)
        query = Query(None)
        for name, value in against.items():
            query.add_annotation(value if hasattr(value, "resolve_expression") else Value(value), name, select=False)
        asked = []
        for n, constraint in enumerate(checks):
            try:
                query.add_annotation(
                    Coalesce(Q(constraint.condition), True, output_field=BooleanField()), f"_check_{n}"
                )
            except FieldError:
                continue  # a condition on an excluded field is not checked (as Django)
            asked.append(constraint)
        if not asked:
            continue
        savepoint = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
        try:
            with savepoint:
                row = query.get_compiler(using=using).execute_sql(SINGLE)
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
