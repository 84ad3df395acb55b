"""Fixtures of the fault tests: one email step for every new client, contact hours that never
defer, a timestamping SMTP server, and the process rig."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from cobranza.models import ContactRules, MessageTemplate, MessageTemplateText, Policy, PolicyStep
from tests.factories import segment
from tests.faults.rig import Mailbox, Rig


@pytest.fixture
def fault_policy(db):
    """Every client of the regular segment gets one email the day after its invoice falls due;
    contact rules allow any hour and enough messages, without spreading them over the day
    (several rounds reach a client only once each, but the rules must never defer: a deferral
    is not a fault)."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Pruebas de fallos", segment=segment("regular"))
    tpl = MessageTemplate.objects.create(code="faults-email", name="faults", channel="email")
    MessageTemplateText.objects.create(
        template=tpl, language="es", subject="Saldo {{ cliente }}", body="{{ cliente }}: {{ total_texto }}"
    )
    PolicyStep.objects.create(policy=policy, position=1, name="Aviso", offset_days=1, channel="email", template=tpl)
    ContactRules.objects.update(
        start_time=dt.time(0, 0),
        end_time=dt.time(23, 59, 59),
        weekdays="1,2,3,4,5,6,7",
        skip_holidays=False,
        max_per_channel_7d=50,
        spread_sends=False,
    )
    return policy


@pytest.fixture
def mailbox():
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def shared_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail("fault tests need the Redis broker: run `make test` (CELERY_BROKER_URL=redis://...)")
    return url


@pytest.fixture
def make_rig(tmp_path, mailbox):
    rigs = []

    def build(config, *, broker_url: str) -> Rig:
        rig = Rig(tmp_path / f"rig{len(rigs)}", broker_url=broker_url, smtp_port=mailbox.port, config=config)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        rig.stop()
