"""Who a change is credited to: a logged-in person, else the system (NULL, «Sistema»)."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts import services
from accounts.templatetags.morosos import user_label
from accounts.utils import actor
from tests.factories import make_client
from tests.processes import ROOT


def test_a_person_is_the_actor_and_nobody_else_is(db, gestora):
    assert actor(gestora) is gestora
    assert actor(None) is None
    assert actor(AnonymousUser()) is None


@pytest.mark.django_db
def test_a_change_made_by_the_system_is_stored_without_author_and_shown_as_sistema(gerente):
    client = make_client(by=gerente)
    by_system = services.payment_record(by=None, client=client, amount=Decimal("10"), received_on=dt.date.today())
    by_person = services.payment_record(by=gerente, client=client, amount=Decimal("10"), received_on=dt.date.today())
    assert by_system.recorded_by is None and user_label(by_system.recorded_by) == "Sistema"
    assert by_person.recorded_by == gerente


def test_nothing_but_actor_decides_who_the_author_is():
    # "by if by is not None and by.is_authenticated else None" and its variants.
    rederived = re.compile(r"""is_authenticated(?:", False\))? else""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for app in ("accounts", "cobranza")
        for path in sorted((ROOT / app).rglob("*.py"))
        if path != ROOT / "accounts" / "utils.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if rederived.search(line)
    ]
    assert offenders == []
