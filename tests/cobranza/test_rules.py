"""Each collections rule of ``cobranza.rules`` gives the same answer in every form it takes: the
SQL of the set-based statements, the ORM of the querysets and the Python of one object."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Client
from cobranza import rules
from cobranza.models import ClientProfile, Commitment, Profile
from tests.factories import make_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def profiled(gerente):
    """One client per case: never classified, computed only, overridden, overridden to the
    same profile, computed as new."""
    cases = {
        "none": None,
        "computed": {"computed": Profile.CHRONIC},
        "override": {"computed": Profile.NEGLIGENT, "override": Profile.GOOD, "override_reason": "acuerdo"},
        "same": {"computed": Profile.CASUAL, "override": Profile.CASUAL, "override_reason": "revisado"},
        "new": {"computed": Profile.NEW},
    }
    clients = {}
    for name, fields in cases.items():
        client = make_client(by=gerente, legal_name=f"Perfil {name}")
        if fields is not None:
            ClientProfile.objects.create(client=client, computed_at=timezone.now(), **fields)
        clients[name] = client
    return clients


def test_effective_profile_sql_orm_and_python_agree(profiled):
    ids = [c.pk for c in profiled.values()]
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT c.id, {rules.effective_profile_sql('cp')} FROM accounts_client c "  # noqa: S608 - test SQL
            "LEFT JOIN cobranza_clientprofile cp ON cp.client_id = c.id WHERE c.id = ANY(%s)",
            [ids],
        )
        by_sql = dict(cur.fetchall())
    by_orm = dict(Client.objects.filter(pk__in=ids).annotate(p=rules.effective_profile_expr()).values_list("pk", "p"))
    rows = {p.client_id: p for p in ClientProfile.objects.filter(client_id__in=ids)}
    by_python = {pk: rules.effective_profile(rows.get(pk)) for pk in ids}
    expected = {
        profiled["none"].pk: Profile.NEW,
        profiled["computed"].pk: Profile.CHRONIC,
        profiled["override"].pk: Profile.GOOD,
        profiled["same"].pk: Profile.CASUAL,
        profiled["new"].pk: Profile.NEW,
    }
    assert by_sql == by_orm == by_python == expected
    # The filter form selects exactly the clients whose effective profile it names.
    for profile in Profile.values:
        filtered = set(
            Client.objects.filter(rules.effective_profile_q(profile), pk__in=ids).values_list("pk", flat=True)
        )
        assert filtered == {pk for pk, p in expected.items() if p == profile}, profile


def test_promise_kept_orm_and_python_agree(gerente, gestora):
    today = timezone.localdate()
    client = make_client(by=gerente, collector=gestora)
    cases = [
        ("promise", "kept", 3),
        ("extension", "kept", 5),
        ("promise", "partial", 4),
        ("promise", "broken", 2),
        ("promise", "cancelled", 1),
        ("promise", "open", None),
        ("plan", "kept", 2),  # plans are judged instalment by instalment, not here
        ("promise", "kept", 45),  # outside the period
    ]
    for kind, status, days_ago in cases:
        Commitment.objects.create(
            client=client,
            kind=kind,
            status=status,
            currency="MXN",
            total=Decimal("10.00"),
            made_on=today - dt.timedelta(days=60),
            resolved_on=None if days_ago is None else today - dt.timedelta(days=days_ago),
        )
    start, end = today - dt.timedelta(days=29), today
    in_period = [c for c in Commitment.objects.all() if c.resolved_on and start <= c.resolved_on <= end]
    by_python = (sum(map(rules.promise_is_kept, in_period)), sum(map(rules.promise_is_judged, in_period)))
    assert by_python == (2, 4)
    assert rules.promise_kept_counts(start, end) == by_python
    assert rules.promise_kept_by_collector(start, end) == {gestora.pk: by_python}
