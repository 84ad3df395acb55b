"""A worker stalled past its lease (SIGSTOP, a paused VM, a long lock wait) must not send a
notice that another worker has taken over meanwhile.

Found while writing the fault tests: `dispatch.claim` sets a lease, but the later writes of the
claiming worker ("store the message", "mark sent") only check `status='sending'`, not that the
claim is still theirs. When the lease expires while worker A is between its claim and storing
the message, worker B claims the notice (no Message-ID stored yet, so it is not "interrupted"),
renders and starts sending; if A wakes up in that window, A's store succeeds too and both send:
the customer gets the same reminder twice. Reproduced here deterministically, in-process: two
threads with their own PostgreSQL connections, the real SMTP server, and the clock passed to
`dispatch(now=...)` instead of waiting the lease.

The production lease is 600 s, so it takes a stall that long. Fixed with a fencing token:
``claim`` returns the lease it set and every later write of that worker filters on it
(``dispatch._mine``), so the stalled worker writes nothing and sends nothing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from cobranza.engine import channels, dispatch, html_email
from cobranza.engine.planner import plan
from cobranza.models import Notice
from tests.faults.rig import make_clients

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp_settings(settings, mailbox):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = mailbox.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "Cobranza <cobranza@morosos.example>"
    return settings


def test_a_worker_stalled_past_its_lease_does_not_send_a_notice_taken_over_by_another(
    fault_policy, gestora, mailbox, smtp_settings
):
    make_clients(collector=gestora, n=1, tag="fence")
    plan(today=timezone.localdate())
    notice = Notice.objects.get()
    t0 = timezone.now()
    taken_over_at = t0 + dispatch.lease() + dt.timedelta(seconds=1)

    a_rendering, a_wakes, a_sending = threading.Event(), threading.Event(), threading.Event()
    render, send = html_email.compose_notice, channels.send

    def stalling_render(*args, **kwargs):  # an email renders both its parts here
        if threading.current_thread().name == "worker-a":
            a_rendering.set()
            a_wakes.wait(10)  # the stall: A sleeps here, between its claim and storing the message
        return render(*args, **kwargs)

    def observed_send(message):
        if threading.current_thread().name == "worker-a":
            a_sending.set()
        else:
            # B is about to send: A wakes up now. With fencing, A stops without sending.
            a_wakes.set()
            a_sending.wait(3)
        return send(message)

    outcomes = {}

    def run(name, now):
        try:
            outcomes[name] = dispatch.dispatch(notice.pk, now=now).outcome
        finally:
            connection.close()

    html_email.compose_notice, channels.send = stalling_render, observed_send
    try:
        worker_a = threading.Thread(target=run, args=("a", t0), name="worker-a")
        worker_a.start()
        assert a_rendering.wait(10)
        worker_b = threading.Thread(target=run, args=("b", taken_over_at), name="worker-b")
        worker_b.start()
        worker_b.join(20)
        worker_a.join(20)
    finally:
        html_email.compose_notice, channels.send = render, send

    assert outcomes.get("b") == dispatch.Outcome.SENT, outcomes
    received = [m for m in mailbox.recorder.messages if str(m["Message-ID"]).startswith(f"<notice-{notice.pk}.")]
    assert len(received) == 1, f"the customer received {len(received)} copies; outcomes {outcomes}"
    assert outcomes["a"] == dispatch.Outcome.NOT_CLAIMED
