"""Dispatch in batches: one claim, a few reads and one SMTP connection for many notices, and
still each message stored before its send and recorded right after it (docs/reliability.md#batches)."""

import contextlib
import datetime as dt
import time
from collections import Counter
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import clock
from accounts import services as ledger
from accounts.models import Interaction
from cobranza import tasks
from cobranza.engine import channels, dispatch
from cobranza.engine import jobs as engine
from cobranza.engine.planner import plan
from cobranza.models import CollectorTask, Notice
from tests.cobranza import test_dispatch
from tests.cobranza.test_dispatch import AT_21, DUE, MX
from tests.factories import make_client, make_invoice
from tests.smtp import Recorder, SMTPServer

pytestmark = pytest.mark.django_db
DAY = DUE + dt.timedelta(days=1)
ladder = test_dispatch.ladder  # the fixture: email, SMS, call, letter, agency steps


class SessionRecorder(Recorder):
    """Also notes the connection each message came on, and refuses chosen recipients."""

    def __init__(self):
        super().__init__()
        self.peers: list[tuple] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address in self.refuse:
            return self.refuse[address]
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        with self.lock:
            self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp(settings):
    server = SMTPServer(recorder=SessionRecorder()).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "Cobranza <cobranza@morosos.example>"
    yield server
    with contextlib.suppress(AssertionError):  # a test stopped it already
        server.stop()


def _debtors(n, *, by, collector, due=DUE):
    for i in range(n):
        client = make_client(by=by, collector=collector)
        ledger.contact_create(
            by=by, client=client, name=f"Pagos {i}", email=f"pagos{i}@deudor.example", phone=f"+52551{i:05d}"
        )
        make_invoice(by=by, client=client, amount="100.00", due_date=due)


def _received(smtp) -> Counter:
    return Counter(str(m["Message-ID"]) for m in smtp.messages)


def test_a_batch_of_fifty_emails_costs_at_most_six_queries_per_notice_and_one_connection(
    ladder, gerente, gestora, smtp, outbox
):
    _debtors(50, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    assert len(ids) == 50
    with CaptureQueriesContext(connection) as queries:
        results = dispatch.dispatch_batch(ids, now=AT_21)
    assert Counter(r.outcome for r in results.values()) == {"sent": 50}
    assert len(queries.captured_queries) / 50 <= 6, len(queries.captured_queries)
    received = _received(smtp)
    assert len(received) == 50 and set(received.values()) == {1}
    assert len(set(smtp.recorder.peers)) == 1  # one SMTP connection for the batch
    sent = Notice.objects.filter(status="sent")
    assert set(sent.values_list("message_id", flat=True)) == set(received)
    # Each sent notice has its timeline entry, with its invoice, as the one-by-one path writes it.
    entries = Interaction.objects.filter(kind="email", direction="outbound", outcome="sent")
    assert entries.count() == 50
    assert {e.client_id for e in entries.prefetch_related("invoices") if e.invoices.count() == 1} == set(
        sent.values_list("client_id", flat=True)
    )


def test_one_smtp_failure_in_a_batch_retries_that_notice_and_sends_the_others_once(
    ladder, gerente, gestora, smtp, outbox
):
    _debtors(5, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    refused = Notice.objects.get(pk=ids[2]).client.contacts.get().email
    smtp.recorder.refuse[refused] = "451 4.3.0 Try again later"
    results = dispatch.dispatch_batch(ids, now=AT_21)
    assert [results[i].outcome for i in ids] == ["sent", "sent", "retry", "sent", "sent"]
    assert len(set(smtp.recorder.peers)) == 2  # reconnected after the failure
    retried = Notice.objects.get(pk=ids[2])
    assert retried.status == "planned" and retried.message_id == ""
    assert retried.scheduled_at == AT_21 + dt.timedelta(minutes=2)

    smtp.recorder.refuse.clear()
    later = AT_21 + dt.timedelta(minutes=3)
    assert dispatch.dispatch_batch(dispatch.due_notice_ids(now=later), now=later) == {
        ids[2]: dispatch.DispatchResult("sent")
    }
    received = _received(smtp)
    assert len(received) == 5 and set(received.values()) == {1}  # five notices, each once


def test_the_smtp_server_down_for_a_whole_batch_retries_every_notice(ladder, gerente, gestora, smtp, outbox):
    _debtors(3, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    smtp.stop()
    results = dispatch.dispatch_batch(dispatch.due_notice_ids(now=AT_21), now=AT_21)
    assert Counter(r.outcome for r in results.values()) == {"retry": 3}
    assert set(Notice.objects.values_list("status", "message_id")) == {("planned", "")}


def test_a_notice_taken_over_mid_batch_is_not_sent_by_the_stale_batch(ladder, gerente, gestora, smtp, outbox):
    _debtors(3, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    victim = ids[2]
    after_lease = AT_21 + dispatch.lease() + dt.timedelta(seconds=1)
    send = channels.EmailSession.send
    taken = {}

    def slow_send(session, message):
        # While this batch sends its first email, its lease runs out and another worker claims
        # the third notice (what a stall past the lease looks like).
        if not taken:
            Notice.objects.filter(pk=victim).update(lease_until=AT_21)
            taken["lease"] = dispatch.claim(victim, now=after_lease)
        return send(session, message)

    channels.EmailSession.send = slow_send
    try:
        results = dispatch.dispatch_batch(ids, now=AT_21)
    finally:
        channels.EmailSession.send = send
    assert taken["lease"] is not None
    assert [results[i].outcome for i in ids] == ["sent", "sent", "not_claimed"]
    received = _received(smtp)
    assert not any(f"<notice-{victim}." in message_id for message_id in received)
    stolen = Notice.objects.get(pk=victim)
    # Untouched by the stale batch: still the other worker's, no message stored.
    assert (stolen.status, stolen.lease_until, stolen.message_id) == ("sending", taken["lease"], "")
    # The other worker sends it, once.
    assert dispatch._dispatch_claimed(_held(victim, taken["lease"]), now=after_lease).outcome == "sent"
    assert len(_received(smtp)) == 3 and set(_received(smtp).values()) == {1}


def _held(notice_id, lease):
    notice = dispatch._load(notice_id)
    notice.claimed_lease = lease
    return notice


def test_a_batch_claims_only_what_is_due_and_not_held(ladder, gerente, gestora, smtp, outbox):
    _debtors(3, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    assert dispatch.claim(ids[0], now=AT_21)  # another worker holds it
    Notice.objects.filter(pk=ids[1]).update(scheduled_at=AT_21 + dt.timedelta(hours=1))  # not due yet
    results = dispatch.dispatch_batch(ids, now=AT_21)
    assert [results[i].outcome for i in ids] == ["not_claimed", "not_claimed", "sent"]
    assert dispatch.dispatch_batch(ids, now=AT_21 + dt.timedelta(minutes=1))[ids[2]].outcome == "not_claimed"
    assert len(smtp.messages) == 1


def test_a_batch_mixes_channels_and_rechecks_each_notice(ladder, gerente, gestora, smtp, outbox):
    """An email, an SMS and a call step due at the same moment, an invoice paid and a client
    written off since planning: each notice of the batch gets what ``dispatch`` gives it."""
    day = DUE + dt.timedelta(days=10)
    at = dt.datetime.combine(day, dt.time(21), tzinfo=MX)  # after every client's slot
    for offset in (1, 5, 10, 1, 1):  # email, SMS, call, email (paid), email (written off)
        _debtors(1, by=gerente, collector=gestora, due=day - dt.timedelta(days=offset))
    plan(today=day, now=at)
    ids = dispatch.due_notice_ids(now=at)
    notices = {n.pk: n for n in Notice.objects.filter(pk__in=ids).select_related("client")}
    emails = sorted(i for i in ids if notices[i].channel == "email")
    assert len(ids) == 5 and len(emails) == 3
    paid, written_off = notices[emails[1]].client, notices[emails[2]].client
    ledger.payment_record(by=gestora, client=paid, amount=Decimal("100.00"), received_on=day)
    ledger.client_update(by=gerente, client=written_off, status="written_off")

    results = dispatch.dispatch_batch(ids, now=at)
    assert {(notices[i].channel, results[i].outcome) for i in ids} == {
        ("email", "sent"),
        ("sms", "sent"),
        ("call", "sent"),
        ("email", "skipped"),
    }
    assert results[emails[1]].outcome == results[emails[2]].outcome == "skipped"
    assert len(smtp.messages) == 1
    assert (outbox / "outbox" / "sms.jsonl").read_text().count("\n") == 1
    call = next(i for i in ids if notices[i].channel == "call")
    assert CollectorTask.objects.filter(notice_id=call, kind="call").exists()


def test_the_inline_run_and_the_enqueue_go_by_batches(ladder, gerente, gestora, smtp, outbox, settings, monkeypatch):
    settings.DUNNING_BATCH_SIZE = 2
    _debtors(5, by=gerente, collector=gestora)
    queued = []
    monkeypatch.setattr(tasks.dispatch_notices, "delay_on_commit", lambda ids: queued.append(ids))
    plan(today=DAY, now=AT_21)
    with clock.running_at(AT_21):
        assert tasks.enqueue_due() == 5
    assert [len(ids) for ids in queued] == [2, 2, 1]
    summary = engine.run(now=AT_21)
    assert summary["dispatched"]["sent"] == 5
    received = _received(smtp)
    assert len(received) == 5 and set(received.values()) == {1}
    assert Counter(tasks.dispatch_notices.run(sum(queued, [])).items()) == {("not_claimed", 5): 1}


def test_a_second_notice_of_a_client_in_the_same_batch_sees_the_first_one_sent(ladder, gerente, gestora, smtp, outbox):
    """Pacing holds across one batch: the batch's reads were made before its first send, so a
    client's later notice in the same batch reads afresh and waits (docs/domain.md#pacing)."""
    _debtors(1, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    first = Notice.objects.get()
    other = make_invoice(by=gerente, client=first.client, amount="50.00", due_date=DUE)
    sms_step = ladder.steps.get(channel="sms")
    second = Notice.objects.get(pk=first.pk)
    second.pk, second.step, second.channel = None, sms_step, "sms"
    second.save()
    second.items.create(invoice=other, step=sms_step, open_balance=other.open_balance, days_overdue=1)

    results = dispatch.dispatch_batch([first.pk, second.pk], now=AT_21)
    assert results[first.pk].outcome == "sent"
    assert results[second.pk].outcome == "deferred"
    assert Notice.objects.get(pk=second.pk).scheduled_at > AT_21
    assert not (outbox / "outbox" / "sms.jsonl").exists()


def test_a_slow_batch_renews_the_lease_of_the_notices_it_has_not_reached(
    ladder, gerente, gestora, smtp, outbox, settings
):
    """With a slow SMTP server a batch outlives its lease: before each notice, past a third of
    the lease, it renews the lease of the rest (fenced), so another worker cannot take them."""
    settings.DUNNING_LEASE_SECONDS = 1
    _debtors(3, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    send = channels.EmailSession.send
    attempts = []

    def slow_send(session, message):
        time.sleep(0.5)  # longer than a third of the lease
        if len(attempts) == 1:
            # Past the first claim's lease, as another worker's clock would see it.
            attempts.append(dispatch.claim(ids[2], now=AT_21 + dt.timedelta(seconds=1.1)))
        else:
            attempts.append(None)
        return send(session, message)

    channels.EmailSession.send = slow_send
    try:
        results = dispatch.dispatch_batch(ids, now=AT_21)
    finally:
        channels.EmailSession.send = send
    assert attempts[1] is None  # the other worker found the notice held
    assert [results[i].outcome for i in ids] == ["sent", "sent", "sent"]
    assert len(_received(smtp)) == 3


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_mid_batch_costs_one_notice_its_lease(
    ladder, gerente, gestora, smtp, outbox, monkeypatch
):
    """The workers' PostgreSQL session is terminated between two notices: the next one fails
    (it waits for its lease, nothing stored, nothing sent) and the batch goes on over a new
    connection; after the lease the one left is sent, once."""
    _debtors(3, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    record_sent = dispatch._record_sent
    recorded = []

    def record_then_drop(notice, **kwargs):
        record_sent(notice, **kwargs)
        recorded.append(notice.pk)
        if len(recorded) == 1:  # after the first notice is recorded: the session is killed
            pid = connection.connection.info.backend_pid
            db = connection.settings_dict
            with psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"]) as other:
                other.cursor().execute("SELECT pg_terminate_backend(%s)", [pid])

    monkeypatch.setattr(dispatch, "_record_sent", record_then_drop)
    results = dispatch.dispatch_batch(ids, now=AT_21)
    assert [results[i].outcome for i in ids] == ["sent", "not_claimed", "sent"]
    left = Notice.objects.get(pk=ids[1])
    assert (left.status, left.message_id) == ("sending", "")
    after_lease = AT_21 + dispatch.lease() + dt.timedelta(seconds=1)
    assert dispatch.dispatch_batch(dispatch.due_notice_ids(now=after_lease), now=after_lease)[ids[1]].outcome == "sent"
    received = _received(smtp)
    assert len(received) == 3 and set(received.values()) == {1}


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_while_recording_a_send_records_it_once(
    ladder, gerente, gestora, smtp, outbox, monkeypatch
):
    """The session dies as the write that records a sent message goes out (its "sent" mark and
    its timeline entry are one statement): the write is retried on a new connection and the
    notice ends sent, with one timeline entry and one copy received."""
    _debtors(2, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    ids = dispatch.due_notice_ids(now=AT_21)
    log_entry = ledger.interaction_log_system
    calls = []

    def drop_then_log(**kwargs):
        calls.append(kwargs["client"].pk)
        if len(calls) == 1:  # the first record: its session is killed under it
            pid = connection.connection.info.backend_pid
            db = connection.settings_dict
            with psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"]) as other:
                other.cursor().execute("SELECT pg_terminate_backend(%s)", [pid])
        return log_entry(**kwargs)

    monkeypatch.setattr(ledger, "interaction_log_system", drop_then_log)
    results = dispatch.dispatch_batch(ids, now=AT_21)
    assert [results[i].outcome for i in ids] == ["sent", "sent"]
    assert len(calls) == 3 and calls[0] == calls[1]  # the first notice's record twice (failed, retried)
    assert set(Notice.objects.values_list("status", flat=True)) == {"sent"}
    entries = Interaction.objects.filter(kind="email", outcome="sent")
    assert sorted(entries.values_list("client_id", flat=True)) == sorted(
        Notice.objects.values_list("client_id", flat=True)
    )
    received = _received(smtp)
    assert len(received) == 2 and set(received.values()) == {1}


def test_a_notice_taken_over_during_its_send_is_not_recorded_by_the_stale_batch(ladder, gerente, gestora, smtp, outbox):
    """The lease runs out while the message is on the wire and another worker takes the notice
    over: the stale batch's "sent" mark and its timeline entry (one statement, fenced by its
    lease) write nothing; the other worker finds the message stored and asks a person."""
    _debtors(1, by=gerente, collector=gestora)
    plan(today=DAY, now=AT_21)
    [notice_id] = dispatch.due_notice_ids(now=AT_21)
    after_lease = AT_21 + dispatch.lease() + dt.timedelta(seconds=1)
    send = channels.EmailSession.send
    taken = {}

    def send_then_lose_the_lease(session, message):
        result = send(session, message)
        Notice.objects.filter(pk=notice_id).update(lease_until=AT_21)
        taken["lease"] = dispatch.claim(notice_id, now=after_lease)
        return result

    channels.EmailSession.send = send_then_lose_the_lease
    try:
        results = dispatch.dispatch_batch([notice_id], now=AT_21)
    finally:
        channels.EmailSession.send = send
    assert results[notice_id].outcome == "sent" and taken["lease"] is not None
    held = Notice.objects.get(pk=notice_id)
    assert (held.status, held.lease_until) == ("sending", taken["lease"])
    assert held.message_id  # stored before the send: the other worker must not send it again
    assert not Interaction.objects.filter(kind="email", outcome="sent").exists()
    assert dispatch._dispatch_claimed(_held(notice_id, taken["lease"]), now=after_lease).outcome == "failed"
    assert len(_received(smtp)) == 1
