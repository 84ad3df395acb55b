"""Outgoing webhooks: queued in the transaction that caused them, signed, delivered to a real
HTTP server, retried with backoff, failed for good when the receiver says no — and the
administrators' pages that configure them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Count, Q
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Invoice
from cobranza import tasks
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import Notice, WebhookDelivery, WebhookEndpoint
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.webhooks import services as webhooks_services
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services
from morosos.celery import app as celery_app
from tests.factories import make_client, make_invoice
from tests.processes import closed_port
from tests.workers import Workers, wait_until

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday; regular ladder: -3 email, +1 email, +7 SMS, ...
ALL_EVENTS = ["notice.sent", "promise.broken", "dispute.opened", "payment.received"]


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=MX)


# --- A real HTTP receiver ---------------------------------------------------------------


class Receiver:
    """An HTTP server on a free local port that records every request and answers
    ``fail_status`` for the next ``fail_times`` requests, then ``status``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.fail_times = 0
        self.fail_status = 500
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    if receiver.fail_times > 0:
                        receiver.fail_times -= 1
                        code = receiver.fail_status
                    else:
                        code = receiver.status
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/morosos"
        # A short poll: shutdown() waits for the loop's next look at its flag (0.5 s by default,
        # paid by every test that stops a receiver).
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    settings.OUTGOING_WEBHOOKS_TIMEOUT = 2
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(receiver, admin_user):
    return webhooks_services.endpoint_create(by=admin_user, name="ERP", url=receiver.url, events=ALL_EVENTS)


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo", tax_id="FEC010101AB1")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example")
    inv = make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_date=DUE)
    return client, inv


def verify(secret: str, request: dict) -> bool:
    """What a receiver does: recompute the signature of "<timestamp>.<body>"."""
    headers = request["headers"]
    signed = headers["X-Morosos-Timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Morosos-Signature"])


def emit_payment_event(key="payment.received:test"):
    with transaction.atomic():
        return webhooks_out.webhook_event_emit(event="payment.received", key=key, payload={"payment": {"id": 1}})


# --- Delivery ---------------------------------------------------------------------------


def test_a_delivery_is_signed_with_the_endpoint_secret_and_names_its_event(endpoint, receiver):
    [delivery_id] = emit_payment_event()
    assert webhooks_out.deliver(delivery_id) == "delivered"
    [request] = receiver.requests
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert request["path"] == "/hooks/morosos"
    assert verify(endpoint.secret, request)
    assert not verify("whsec_otro", request)
    assert request["headers"]["X-Morosos-Event"] == "payment.received"
    assert request["headers"]["X-Morosos-Delivery"] == str(delivery.event_id)
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(request["body"])
    assert body["id"] == str(delivery.event_id) and body["type"] == "payment.received"
    assert body["data"] == {"payment": {"id": 1}}
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.lease_until is None
    # Delivered once: asking again sends nothing.
    assert webhooks_out.deliver(delivery_id) == "not_claimed"
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_on_the_backoff_schedule_with_the_same_event_id(endpoint, receiver):
    receiver.fail_times = 3
    [delivery_id] = emit_payment_event()
    t0 = dt.datetime(2026, 3, 3, 16, 0, tzinfo=dt.UTC)
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=t0)
    now = t0
    schedule = []
    for wait in (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30)):
        assert webhooks_out.deliver(delivery_id, now=now) == "retry"
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert delivery.status == "planned" and delivery.last_status_code == 500
        assert delivery.next_attempt_at == now + wait
        schedule.append(delivery.next_attempt_at - now)
        # Not before its time: neither the worker nor the minute sweep takes it early.
        early = now + wait - dt.timedelta(seconds=1)
        assert webhooks_out.deliver(delivery_id, now=early) == "not_claimed"
        assert delivery_id not in webhooks_out.due_delivery_ids(now=early)
        now = now + wait
        assert delivery_id in webhooks_out.due_delivery_ids(now=now)
    assert webhooks_out.deliver(delivery_id, now=now) == "delivered"
    assert schedule == list(webhooks_out.BACKOFF[:3])
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 4, "")
    ids = {r["headers"]["X-Morosos-Delivery"] for r in receiver.requests}
    assert ids == {str(delivery.event_id)} and len(receiver.requests) == 4
    # Each attempt is signed with its own timestamp, and every signature verifies.
    assert len({r["headers"]["X-Morosos-Timestamp"] for r in receiver.requests}) == 4
    assert all(verify(endpoint.secret, r) for r in receiver.requests)
    assert len({r["body"] for r in receiver.requests}) == 1  # the same event, byte for byte


def test_it_gives_up_after_the_last_retry_and_records_why(endpoint, receiver):
    receiver.fail_times, receiver.fail_status = 100, 503
    [delivery_id] = emit_payment_event()
    now = dt.datetime(2026, 3, 3, 16, 0, tzinfo=dt.UTC)
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=now)
    outcomes = []
    for _ in range(webhooks_out.MAX_ATTEMPTS):
        outcomes.append(webhooks_out.deliver(delivery_id, now=now))
        now = WebhookDelivery.objects.get(pk=delivery_id).next_attempt_at
    assert outcomes == ["retry"] * 5 + ["failed"]
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 6, 503)
    assert "6 intentos" in delivery.last_error and "503" in delivery.last_error
    assert webhooks_out.due_delivery_ids(now=now + dt.timedelta(days=2)) == []
    assert len(receiver.requests) == 6


@pytest.mark.parametrize(("status", "outcome"), [(400, "failed"), (410, "failed"), (408, "retry"), (429, "retry")])
def test_a_4xx_answer_is_final_except_timeout_and_too_many_requests(endpoint, receiver, status, outcome):
    receiver.status = status
    [delivery_id] = emit_payment_event()
    assert webhooks_out.deliver(delivery_id) == outcome
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.last_status_code == status and str(status) in delivery.last_error
    assert delivery.status == ("failed" if outcome == "failed" else "planned")


def test_a_redirect_is_not_followed_and_counts_as_a_refusal(endpoint, receiver):
    receiver.status = 302
    [delivery_id] = emit_payment_event()
    assert webhooks_out.deliver(delivery_id) == "failed"
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get(pk=delivery_id).last_status_code == 302


def test_a_refused_connection_or_a_timeout_is_retried(endpoint, receiver, settings):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.1:{closed_port()}/x")
    [delivery_id] = emit_payment_event("payment.received:a")
    assert webhooks_out.deliver(delivery_id) == "retry"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.last_status_code is None and delivery.last_error == "No se pudo conectar con el receptor."

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
    settings.OUTGOING_WEBHOOKS_TIMEOUT = 0.3
    receiver.delay = 1.0
    [slow_id] = emit_payment_event("payment.received:b")
    started = time.monotonic()
    assert webhooks_out.deliver(slow_id) == "retry"
    assert time.monotonic() - started < 0.9
    # The same words as a refused connection: the error must not tell open ports from closed ones.
    assert WebhookDelivery.objects.get(pk=slow_id).last_error == "No se pudo conectar con el receptor."


def test_an_expired_lease_is_taken_over_and_sent_with_the_same_event_id(endpoint, receiver):
    [delivery_id] = emit_payment_event()
    now = dt.datetime(2026, 3, 3, 16, 0, tzinfo=dt.UTC)
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=now)
    assert webhooks_out.claim(delivery_id, now=now)  # a worker claims it, then dies
    assert webhooks_out.deliver(delivery_id, now=now + dt.timedelta(minutes=1)) == "not_claimed"
    assert delivery_id not in webhooks_out.due_delivery_ids(now=now + dt.timedelta(minutes=1))
    later = now + webhooks_out.LEASE + dt.timedelta(seconds=1)
    assert delivery_id in webhooks_out.due_delivery_ids(now=later)
    assert webhooks_out.deliver(delivery_id, now=later) == "delivered"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.attempts == 2
    assert receiver.requests[0]["headers"]["X-Morosos-Delivery"] == str(delivery.event_id)


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_deliver_once(endpoint, receiver):
    receiver.delay = 0.2
    [delivery_id] = emit_payment_event()
    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def run():
        try:
            barrier.wait()
            outcomes.append(webhooks_out.deliver(delivery_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(outcomes) == ["delivered", "not_claimed", "not_claimed", "not_claimed"]
    assert len(receiver.requests) == 1


# --- Emitting ---------------------------------------------------------------------------


def test_the_same_domain_event_is_queued_once_per_endpoint(endpoint, receiver, admin_user):
    other = webhooks_services.endpoint_create(by=admin_user, name="BI", url=receiver.url, events=["payment.received"])
    first = emit_payment_event("payment.received:7")
    again = emit_payment_event("payment.received:7")
    assert len(first) == 2 and again == []
    rows = WebhookDelivery.objects.filter(event_key="payment.received:7")
    assert sorted(rows.values_list("endpoint_id", flat=True)) == sorted([endpoint.pk, other.pk])
    # One event, one id: both receivers can match it.
    assert len(set(rows.values_list("event_id", flat=True))) == 1


def test_inactive_and_unsubscribed_endpoints_get_nothing(receiver, admin_user):
    off = webhooks_services.endpoint_create(
        by=admin_user, name="Off", url=receiver.url, events=ALL_EVENTS, is_active=False
    )
    disputes_only = webhooks_services.endpoint_create(
        by=admin_user, name="Disputas", url=receiver.url, events=["dispute.opened"]
    )
    assert emit_payment_event() == []
    assert not WebhookDelivery.objects.filter(endpoint__in=[off, disputes_only]).exists()


def test_a_queued_delivery_for_an_endpoint_deactivated_since_is_not_sent(endpoint, receiver, admin_user):
    [delivery_id] = emit_payment_event()
    webhooks_services.endpoint_set_active(by=admin_user, endpoint=endpoint, active=False)
    assert webhooks_out.deliver(delivery_id) == "failed"
    assert receiver.requests == []
    assert "desactivado" in WebhookDelivery.objects.get(pk=delivery_id).last_error


def test_nothing_is_emitted_when_the_payment_rolls_back(endpoint, debtor, gestora):
    client, inv = debtor

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        ledger.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=DUE)
        raise Boom
    assert not WebhookDelivery.objects.exists()


def test_a_recorded_payment_emits_payment_received_once(endpoint, debtor, gestora, django_capture_on_commit_callbacks):
    client, inv = debtor
    with django_capture_on_commit_callbacks() as callbacks:
        payment = ledger.payment_record(
            by=gestora, client=client, amount=Decimal("600.00"), received_on=DUE, reference="SPEI-1"
        )
    assert len(callbacks) == 1  # the hand-off to the workers, after commit
    # The same reference again is the same payment: no second event.
    ledger.payment_record(by=gestora, client=client, amount=Decimal("600.00"), received_on=DUE, reference="SPEI-1")
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.event_key) == ("payment.received", f"payment.received:{payment.pk}")
    data = delivery.payload["data"]
    assert data["payment"] == {
        "id": payment.pk,
        "amount": "600.00",
        "currency": "MXN",
        "received_on": "2026-03-02",
        "method": "transfer",
        "reference": "SPEI-1",
        "unallocated": "0.00",
    }
    assert data["client"] == {"id": client.pk, "name": "Ferretería El Clavo", "tax_id": "FEC010101AB1"}
    assert data["allocations"] == [{"invoice": "FC-1", "amount": "600.00"}]


def test_past_payments_being_loaded_are_not_news(endpoint, debtor, gestora):
    client, inv = debtor
    ledger.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=DUE, historical=True)
    assert not WebhookDelivery.objects.exists()


def test_an_opened_dispute_emits_dispute_opened_once(endpoint, debtor, gestora):
    client, inv = debtor
    dispute = workspace_services.dispute_open(
        by=gestora, client=client, invoices=[inv], reason="product", description="Llegaron cajas dañadas"
    )
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.event_key) == ("dispute.opened", f"dispute.opened:{dispute.pk}")
    data = delivery.payload["data"]
    assert data["dispute"] == {"id": dispute.pk, "reason": "product", "opened_on": dispute.opened_on.isoformat()}
    assert data["invoices"][0]["number"] == "FC-1" and data["invoices"][0]["amount"] == "1500.00"
    assert "Llegaron" not in json.dumps(delivery.payload)  # the complaint's text stays with us


def test_a_broken_promise_emits_promise_broken_once(endpoint, debtor, gestora):
    client, inv = debtor
    with time_machine.travel(at(DUE), tick=False) as clock:
        promise = workspace_services.commitment_create(
            by=gestora, client=client, kind="promise", installments=[(DUE + dt.timedelta(days=2), Decimal("1500.00"))]
        )
        clock.move_to(at(DUE + dt.timedelta(days=4)))
        assert commitments.judge(today=DUE + dt.timedelta(days=4))["broken"] == 1
        assert commitments.judge(today=DUE + dt.timedelta(days=5))["broken"] == 0
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.event_key) == ("promise.broken", f"promise.broken:{promise.pk}")
    commitment = delivery.payload["data"]["commitment"]
    assert commitment["status"] == "broken" and commitment["kind"] == "promise"
    assert (commitment["total"], commitment["paid"], commitment["currency"]) == ("1500.00", "0.00", "MXN")
    assert commitment["resolved_on"] == "2026-03-06"
    assert [i["number"] for i in delivery.payload["data"]["invoices"]] == ["FC-1"]


def test_a_kept_promise_emits_nothing(endpoint, debtor, gestora):
    client, inv = debtor
    with time_machine.travel(at(DUE), tick=False) as clock:
        workspace_services.commitment_create(
            by=gestora, client=client, kind="promise", installments=[(DUE + dt.timedelta(days=2), Decimal("1500.00"))]
        )
        ledger.payment_record(by=gestora, client=client, amount=Decimal("1500.00"), received_on=DUE)
        clock.move_to(at(DUE + dt.timedelta(days=4)))
        commitments.judge(today=DUE + dt.timedelta(days=4))
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["payment.received"]


def test_a_sent_notice_emits_notice_sent_once(endpoint, debtor, smtp, outbox):
    client, inv = debtor
    day = DUE + dt.timedelta(days=1)
    # at 21:00, after the client's slot (docs/domain.md#spread)
    with time_machine.travel(at(day, 21), tick=False):
        plan(today=day, now=at(day, 21))
        results = [dispatch.dispatch(i, now=at(day, 21)) for i in dispatch.due_notice_ids(now=at(day, 21))]
        assert [r.outcome for r in results] == ["sent"] and len(smtp.messages) == 1
        notice = Notice.objects.get(status="sent")
        assert dispatch.dispatch(notice.pk, now=at(day, 21)).outcome == "not_claimed"
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.event_key) == ("notice.sent", f"notice.sent:{notice.pk}")
    data = delivery.payload["data"]
    assert data["notice"]["id"] == notice.pk and data["notice"]["channel"] == "email"
    assert data["client"]["id"] == client.pk
    assert [i["number"] for i in data["invoices"]] == ["FC-1"]
    assert "rosa@clavo.example" not in json.dumps(delivery.payload)  # not to whom


def test_a_skipped_notice_emits_nothing(endpoint, debtor, gestora, smtp, outbox):
    client, inv = debtor
    day = DUE + dt.timedelta(days=1)
    # at 21:00, after the client's slot (docs/domain.md#spread)
    with time_machine.travel(at(day, 21), tick=False):
        plan(today=day, now=at(day, 21))
        ledger.invoice_set_status(by=None, invoice=inv, status=Invoice.Status.CANCELLED, reason="Error de captura")
        results = [dispatch.dispatch(i, now=at(day, 21)) for i in dispatch.due_notice_ids(now=at(day, 21))]
    assert [r.outcome for r in results] == ["skipped"]
    assert not WebhookDelivery.objects.exists()


def test_the_worker_task_delivers_what_the_outbox_queued(
    endpoint, receiver, debtor, gestora, django_capture_on_commit_callbacks
):
    """The path in production: commit → on_commit → Celery task → claim and POST."""
    client, inv = debtor
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            payment = ledger.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=DUE)
    finally:
        celery_app.conf.task_always_eager = False
    delivery = WebhookDelivery.objects.get(event_key=f"payment.received:{payment.pk}")
    assert delivery.status == "delivered"
    assert json.loads(receiver.requests[0]["body"])["data"]["payment"]["amount"] == "100.00"
    # The minute sweep finds nothing left to hand out.
    assert tasks.enqueue_due_webhooks() == 0


def test_an_unreachable_broker_loses_nothing(endpoint, receiver, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", down)
    [delivery_id] = emit_payment_event()
    webhooks_out.enqueue([delivery_id])  # logs, does not raise
    assert delivery_id in webhooks_out.due_delivery_ids(now=WebhookDelivery.objects.get().next_attempt_at)
    assert tasks.deliver_webhook(delivery_id) == "delivered"


# --- Endpoints (service) ----------------------------------------------------------------


def test_the_secret_is_generated_here_and_rotation_changes_the_signature(endpoint, receiver, admin_user):
    old = endpoint.secret
    assert old.startswith("whsec_") and len(old) > 40
    webhooks_services.endpoint_rotate_secret(by=admin_user, endpoint=endpoint)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret_rotated_at is not None
    [delivery_id] = emit_payment_event()
    webhooks_out.deliver(delivery_id)
    assert verify(endpoint.secret, receiver.requests[0]) and not verify(old, receiver.requests[0])


@pytest.mark.parametrize(
    ("url", "allow_local", "message"),
    [
        ("http://erp.example.com/hooks", False, "https://"),
        ("https://usuario:clave@erp.example.com/hooks", False, "usuario"),
        ("ftp://erp.example.com/hooks", False, "URL válida"),
        ("erp.example.com", False, "URL válida"),
        ("https://10.0.0.5/hooks", False, "privada"),
        ("http://127.0.0.1:8000/hooks", False, "localhost"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(settings, url, allow_local, message):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = allow_local
    with pytest.raises(webhooks_out.ValidationError) as err:
        webhooks_out.validate_url(url)
    assert message in " ".join(err.value.messages)


def test_only_administrators_configure_webhooks(gerente, receiver):
    with pytest.raises(webhooks_services.PermissionDenied):
        webhooks_services.endpoint_create(by=gerente, name="X", url=receiver.url, events=ALL_EVENTS)


# --- Pages ------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def test_creating_an_endpoint_shows_its_secret(as_admin, receiver):
    response = as_admin.post(
        reverse("cobranza:webhook_create"),
        {
            "name": "ERP central",
            "url": receiver.url,
            "events": ["payment.received", "dispute.opened"],
            "is_active": "on",
        },
    )
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302 and response.url == reverse("cobranza:webhook_detail", args=[endpoint.pk])
    assert endpoint.events == ["dispute.opened", "payment.received"] and endpoint.is_active
    page = as_admin.get(response.url).content.decode()
    assert endpoint.secret in page and "ERP central" in page


def test_bad_input_comes_back_as_field_errors(as_admin, settings):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = False
    response = as_admin.post(reverse("cobranza:webhook_create"), {"name": " ", "url": "http://erp.example.com/x"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"name", "url", "events"}
    assert "https://" in form.errors["url"][0]
    assert form.errors["events"] == ["Elija al menos un evento."]
    assert not WebhookEndpoint.objects.exists()
    html = response.content.decode()
    assert "is-invalid" in html and "Elija al menos un evento." in html


def test_editing_keeps_the_secret_and_validates_like_creating(as_admin, endpoint, settings):
    url = reverse("cobranza:webhook_edit", args=[endpoint.pk])
    response = as_admin.post(url, {"name": "ERP", "url": "nota una url", "events": ["ping"]})
    assert set(response.context["form"].errors) == {"url", "events"}
    response = as_admin.post(url, {"name": "ERP 2", "url": endpoint.url, "events": ["notice.sent"]})
    assert response.status_code == 302
    old_secret = endpoint.secret
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.events, endpoint.is_active) == ("ERP 2", ["notice.sent"], False)
    assert endpoint.secret == old_secret


def test_the_test_event_is_delivered_and_shown(as_admin, endpoint, receiver):
    response = as_admin.post(reverse("cobranza:webhook_ping", args=[endpoint.pk]), follow=True)
    html = response.content.decode()
    assert "Evento de prueba entregado (HTTP 200)" in html
    [request] = receiver.requests
    assert request["headers"]["X-Morosos-Event"] == "ping" and verify(endpoint.secret, request)
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_failed_delivery_can_be_retried_now(as_admin, endpoint, receiver, django_capture_on_commit_callbacks):
    receiver.status = 400
    as_admin.post(reverse("cobranza:webhook_ping", args=[endpoint.pk]))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    page = as_admin.get(reverse("cobranza:webhook_detail", args=[endpoint.pk]) + "?estado=failed").content.decode()
    assert "Reintentar ahora" in page and "HTTP 400" in page
    receiver.status = 200
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_admin.post(reverse("cobranza:webhook_delivery_retry", args=[delivery.pk]))
    assert response.status_code == 302 and len(callbacks) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("planned", 0)
    assert webhooks_out.deliver(delivery.pk) == "delivered"
    # Retrying something not failed is refused with a message, not an error page.
    response = as_admin.post(reverse("cobranza:webhook_delivery_retry", args=[delivery.pk]), follow=True)
    assert "Solo se reintentan las entregas fallidas." in response.content.decode()


def test_deactivate_rotate_and_delete_from_the_pages(as_admin, endpoint):
    as_admin.post(reverse("cobranza:webhook_toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    response = as_admin.post(reverse("cobranza:webhook_ping", args=[endpoint.pk]), follow=True)
    assert "desactivado" in response.content.decode() and not WebhookDelivery.objects.exists()
    old = endpoint.secret
    as_admin.post(reverse("cobranza:webhook_rotate_secret", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert as_admin.get(reverse("cobranza:webhook_delete", args=[endpoint.pk])).status_code == 200
    response = as_admin.post(reverse("cobranza:webhook_delete", args=[endpoint.pk]))
    assert response.url == reverse("cobranza:webhook_list") and not WebhookEndpoint.objects.exists()


def test_the_list_and_deliveries_pages_cost_the_same_queries_however_many_rows(
    as_admin, receiver, admin_user, django_assert_max_num_queries
):
    def add(n):
        for i in range(n):
            ep = webhooks_services.endpoint_create(by=admin_user, name=f"E{i}", url=receiver.url, events=ALL_EVENTS)
            WebhookDelivery.objects.bulk_create(
                WebhookDelivery(
                    endpoint=ep,
                    event="payment.received",
                    event_key=f"k{j}",
                    event_id=f"{i:08d}-0000-4000-8000-{j:012d}",
                )
                for j in range(n)
            )
        return ep

    ep = add(2)
    # Session, user, roles, then one query for the endpoints and their figures; the
    # deliveries page adds the page count and the page itself.
    with django_assert_max_num_queries(4):
        assert as_admin.get(reverse("cobranza:webhook_list")).status_code == 200
    with django_assert_max_num_queries(6):
        assert as_admin.get(reverse("cobranza:webhook_detail", args=[ep.pk])).status_code == 200
    ep = add(12)
    with django_assert_max_num_queries(4):
        response = as_admin.get(reverse("cobranza:webhook_list"))
    assert response.content.decode().count('data-testid="delivery-row"') == 0
    assert sum(f">E{i}</a>" in response.content.decode() for i in range(12)) == 12
    with django_assert_max_num_queries(6):
        response = as_admin.get(reverse("cobranza:webhook_detail", args=[ep.pk]))
    assert response.content.decode().count('data-testid="delivery-row"') == 12


@pytest.mark.parametrize("who", ["gestora", "gerente"])
def test_collectors_and_managers_may_not_open_the_webhook_pages(client, endpoint, who, request):
    client.force_login(request.getfixturevalue(who))
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="ping", event_key="ping:x", event_id="00000000-0000-4000-8000-000000000001"
    )
    for name, args, method in [
        ("webhook_list", [], "get"),
        ("webhook_create", [], "get"),
        ("webhook_detail", [endpoint.pk], "get"),
        ("webhook_edit", [endpoint.pk], "get"),
        ("webhook_toggle", [endpoint.pk], "post"),
        ("webhook_rotate_secret", [endpoint.pk], "post"),
        ("webhook_ping", [endpoint.pk], "post"),
        ("webhook_delete", [endpoint.pk], "post"),
        ("webhook_delivery_retry", [delivery.pk], "post"),
    ]:
        response = getattr(client, method)(reverse(f"cobranza:{name}", args=args))
        assert response.status_code == 403, name
    endpoint.refresh_from_db()
    assert endpoint.is_active and WebhookEndpoint.objects.exists()


def test_finished_deliveries_are_pruned_after_the_retention_period(endpoint, settings):
    settings.OUTGOING_WEBHOOKS_RETENTION_DAYS = 30
    now = dt.datetime(2026, 3, 3, 16, 0, tzinfo=dt.UTC)
    old, recent = now - dt.timedelta(days=31), now - dt.timedelta(days=29)
    for n, (status, created) in enumerate(
        [("delivered", old), ("failed", old), ("planned", old), ("sending", old), ("delivered", recent)]
    ):
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event="ping",
            event_key=f"ping:{n}",
            event_id=f"00000000-0000-4000-8000-{n:012d}",
            status=status,
            created_at=created,
        )
    assert webhooks_out.prune_deliveries(now=now) == 2
    kept = sorted(WebhookDelivery.objects.values_list("status", flat=True))
    assert kept == ["delivered", "planned", "sending"]


@pytest.mark.django_db(transaction=True)
def test_two_celery_worker_processes_deliver_each_event_once(endpoint, receiver, smtp, tmp_path):
    """Real processes on PostgreSQL + Redis: every delivery enqueued twice (a repeated sweep),
    two workers of two processes each; the receiver gets each event once, signed."""
    receiver.fail_times = 5  # a few 500s on the way: those wait for their backoff
    ids = []
    for n in range(30):
        ids += emit_payment_event(f"payment.received:w{n}")
    assert len(ids) == 30
    workers = Workers(tmp_path, smtp.port)
    # The receiver is on this machine: the workers (production settings) must be told it may be.
    workers.env["OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP"] = "1"
    try:
        workers.start(2)
        for _ in range(2):
            for delivery_id in ids:
                tasks.deliver_webhook.apply_async(args=[delivery_id], queue=workers.queue)

        def settled():
            # every delivery tried at least once, and no attempt still in flight
            return not WebhookDelivery.objects.filter(Q(attempts=0) | Q(status="sending")).exists()

        wait_until(settled, 90, "every delivery settled", workers)
        time.sleep(1)  # let any duplicate task finish before counting
    finally:
        workers.stop()
    counts = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")))
    assert counts == {"delivered": 25, "planned": 5}
    # The five that met a 500 wait for their backoff: one attempt each, not two.
    assert set(WebhookDelivery.objects.filter(status="planned").values_list("attempts", "last_status_code")) == {
        (1, 500)
    }
    event_ids = [r["headers"]["X-Morosos-Delivery"] for r in receiver.requests]
    assert len(event_ids) == 30 and len(set(event_ids)) == 30
    assert all(verify(endpoint.secret, r) for r in receiver.requests)
