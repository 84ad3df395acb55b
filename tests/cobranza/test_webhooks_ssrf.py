"""Outgoing webhooks reach only the public Internet (security finding 1, docs/security.md).

An administrator types the receiver's URL; the host is resolved and refused unless every
address is public, at save and again at each send, and the POST goes to the address that was
checked (no second DNS answer between check and connect) with TLS still verified against the
host name. What is stored of a failure tells nothing about the network behind the address.

DNS is the outside world here: a stub resolver answers what each test needs. The listeners
are real sockets on this machine.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from cobranza.models import WebhookDelivery, WebhookEndpoint
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.webhooks import services as webhooks_services
from tests.cobranza.test_webhooks_out import ALL_EVENTS, Receiver, emit_payment_event, verify
from tests.processes import closed_port

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"
INTERNAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.5.4",
    "192.168.1.10",
    "169.254.169.254",  # AWS, GCP, Azure metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT, some clouds' internal networks)
    "100.100.100.200",  # Alibaba Cloud metadata
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:c0a8:010a::1",  # 6to4 of 192.168.1.10
]


class StubDNS:
    """Stands in for ``socket.getaddrinfo`` in the webhook module: each host name answers the
    addresses set for it; unknown names do not resolve. Counts the questions."""

    def __init__(self):
        self.answers: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's signature
        self.asked.append(host)
        if ":" in host or host.replace(".", "").isdigit():  # a literal answers itself, as in real DNS
            return [(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.answers[host]
        ]


@pytest.fixture
def dns(monkeypatch, settings):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = False
    settings.OUTGOING_WEBHOOKS_TIMEOUT = 2
    stub = StubDNS()
    monkeypatch.setattr(webhooks_out, "getaddrinfo", stub)
    return stub


class Listener:
    """A real TCP socket listening on loopback that never accepts: any connection attempt
    lands in its backlog, where ``connections()`` finds it."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        self.sock.settimeout(0.2)
        count = 0
        while True:
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                return count
            conn.close()
            count += 1

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _endpoint(admin_user, url: str) -> WebhookEndpoint:
    """An endpoint whose URL passed the checks when it was saved (or was saved before them)."""
    return WebhookEndpoint.objects.create(
        name="ERP", url=url, events=ALL_EVENTS, secret=webhooks_services.secret_generate(), created_by=admin_user
    )


# --- at save ----------------------------------------------------------------------------


@pytest.mark.parametrize("address", INTERNAL)
def test_a_name_resolving_to_an_internal_address_is_refused_at_save(dns, address):
    dns.answers["hooks.example.com"] = [address]
    with pytest.raises(webhooks_out.ValidationError):
        webhooks_out.validate_url("https://hooks.example.com/eventos")


def test_one_internal_address_among_public_ones_is_enough_to_refuse(dns):
    dns.answers["hooks.example.com"] = [PUBLIC, "10.0.0.7"]
    with pytest.raises(webhooks_out.ValidationError):
        webhooks_out.validate_url("https://hooks.example.com/eventos")


@pytest.mark.parametrize(
    "url",
    [
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://metadata/latest",
        "https://instance-data/latest",
        "https://erp.corp.internal/hooks",
        "https://impresora.local/hooks",
        "https://intranet/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest",
        "https://100.100.100.200/latest",
    ],
)
def test_metadata_names_private_name_spaces_and_literals_are_refused_whatever_they_resolve_to(dns, url):
    for name in ("metadata.google.internal", "metadata", "instance-data", "erp.corp.internal", "impresora.local"):
        dns.answers[name] = [PUBLIC]
    dns.answers["intranet"] = [PUBLIC]
    with pytest.raises(webhooks_out.ValidationError):
        webhooks_out.validate_url(url)


def test_a_name_that_does_not_resolve_is_refused_with_the_same_message_as_an_internal_one(dns):
    dns.answers["interno.example.com"] = ["10.0.0.7"]
    messages = []
    for url in ("https://no-existe.example.com/x", "https://interno.example.com/x"):
        with pytest.raises(webhooks_out.ValidationError) as err:
            webhooks_out.validate_url(url)
        messages.append(err.value.messages)
    assert messages[0] == messages[1]  # the internal network's names are not told apart


def test_a_public_address_passes_the_check(dns):
    dns.answers["hooks.example.com"] = [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert webhooks_out.validate_url("https://hooks.example.com/eventos?v=1") == "https://hooks.example.com/eventos?v=1"
    assert [str(a) for a in webhooks_out.checked_addresses("https://hooks.example.com/eventos")] == [
        PUBLIC,
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]


def test_the_page_refuses_an_internal_name_next_to_the_url_field(dns, client, admin_user):
    dns.answers["127.0.0.1.nip.io"] = ["127.0.0.1"]
    dns.answers["localtest.me"] = ["127.0.0.1"]
    dns.answers["hooks.example.com"] = ["100.64.3.2"]
    client.force_login(admin_user)
    for url in ("https://127.0.0.1.nip.io/x", "https://localtest.me/x", "https://hooks.example.com/x"):
        response = client.post(reverse("cobranza:webhook_create"), {"name": "X", "url": url, "events": ALL_EVENTS})
        assert response.status_code == 200
        assert set(response.context["form"].errors) == {"url"}, url
    assert not WebhookEndpoint.objects.exists()


# --- at send ----------------------------------------------------------------------------


def test_a_name_that_now_resolves_to_loopback_is_never_connected_to(dns, admin_user, listener):
    """DNS rebinding: public when saved, this machine when sent. A real listener on loopback
    sees no connection, and the delivery records why without any network detail."""
    dns.answers["hooks.example.com"] = [PUBLIC]
    url = f"https://hooks.example.com:{listener.port}/eventos"
    endpoint = _endpoint(admin_user, webhooks_out.validate_url(url))
    dns.answers["hooks.example.com"] = ["127.0.0.1"]
    [delivery_id] = emit_payment_event()

    assert webhooks_out.deliver(delivery_id) == "retry"

    assert listener.connections() == 0
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.last_status_code is None and "pública" in delivery.last_error
    assert endpoint.url == url


def test_a_loopback_url_saved_before_the_checks_is_never_connected_to(dns, admin_user, listener):
    _endpoint(admin_user, f"http://127.0.0.1:{listener.port}/eventos")
    [delivery_id] = emit_payment_event()
    assert webhooks_out.deliver(delivery_id) == "retry"
    assert listener.connections() == 0


@pytest.mark.parametrize("address", INTERNAL)
def test_an_internal_address_is_refused_at_send_before_any_connection(dns, admin_user, monkeypatch, address):
    dns.answers["hooks.example.com"] = [address]
    _endpoint(admin_user, "https://hooks.example.com/eventos")

    def no_connection(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(webhooks_out, "_pinned", no_connection)
    [delivery_id] = emit_payment_event()
    assert webhooks_out.deliver(delivery_id) == "retry"
    assert "pública" in WebhookDelivery.objects.get(pk=delivery_id).last_error


def test_the_post_goes_to_the_checked_address_resolved_once(dns, settings, admin_user):
    """The name is asked once per send and the socket opens to that answer: the receiver
    (on loopback, allowed for this test) gets the request under the name it was sent to."""
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    receiver = Receiver().start()
    try:
        dns.answers["receptor.example.com"] = ["127.0.0.1"]
        endpoint = _endpoint(admin_user, f"http://receptor.example.com:{receiver.port}/h")
        [delivery_id] = emit_payment_event()
        dns.asked.clear()
        assert webhooks_out.deliver(delivery_id) == "delivered"
    finally:
        receiver.stop()
    assert dns.asked == ["receptor.example.com"]
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"receptor.example.com:{receiver.port}"
    assert verify(endpoint.secret, request)


# --- TLS is verified against the name, not the address -----------------------------------


class TLSReceiver:
    """An HTTPS server on loopback with a self-signed certificate for ``cert_name``; records
    the name each client asked for (SNI)."""

    def __init__(self, tmp_path, cert_name: str):
        key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(key), "-out", str(cert),
                "-subj", f"/CN={cert_name}", "-addext", f"subjectAltName=DNS:{cert_name}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.cert = cert
        self.server_names: list[str | None] = []
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        # A short poll: shutdown() waits for the loop's next look at its flag (0.5 s by default,
        # paid by every test that stops a receiver).
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(
    ("cert_name", "outcome"), [("receptor.example.com", "delivered"), ("otro.example.com", "retry")]
)
def test_tls_is_verified_against_the_host_name(dns, settings, admin_user, monkeypatch, tmp_path, cert_name, outcome):
    """The socket goes to the pinned address; SNI and the certificate check use the name. A
    certificate for another name fails like any other connection problem."""
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    server = TLSReceiver(tmp_path, cert_name)
    real_context = ssl.create_default_context
    # The test's certificate authority is its own self-signed certificate; verification stays on.
    monkeypatch.setattr(webhooks_out.ssl, "create_default_context", lambda: real_context(cafile=str(server.cert)))
    try:
        dns.answers["receptor.example.com"] = ["127.0.0.1"]
        _endpoint(admin_user, f"https://receptor.example.com:{server.port}/h")
        [delivery_id] = emit_payment_event()
        assert webhooks_out.deliver(delivery_id) == outcome
    finally:
        server.stop()
    assert server.server_names == ["receptor.example.com"]
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert server.requests == (1 if outcome == "delivered" else 0)
    if outcome == "retry":
        assert delivery.last_error == "No se pudo conectar con el receptor."


# --- nothing about the network in what is stored ------------------------------------------


class Misbehaving:
    """A loopback server that, per connection, closes at once (EOF), or sends garbage, or
    hangs, or answers an error with a revealing body."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(3)
                if self.mode == "eof":
                    continue
                conn.recv(65536)
                if self.mode == "garbage":
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                elif self.mode == "hang":
                    self.stop_event.wait(3)
                elif self.mode == "error-body":
                    body = b"Traceback: password=hunter2 at db-internal-7:5432"
                    conn.sendall(
                        b"HTTP/1.1 500 Secret Reason db-internal-7\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)
        self.sock.close()


def test_refused_closed_garbage_and_silent_receivers_leave_the_same_generic_error(dns, settings, admin_user):
    """An administrator's test event must not work as a port scanner: whatever is (or is not)
    behind the address, the stored error is the same sentence."""
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    settings.OUTGOING_WEBHOOKS_TIMEOUT = 0.5
    dns.answers["receptor.example.com"] = ["127.0.0.1"]
    errors = {}
    for mode in ("refused", "eof", "garbage", "hang"):
        server = None if mode == "refused" else Misbehaving(mode)
        port = closed_port() if server is None else server.port
        WebhookEndpoint.objects.all().delete()
        _endpoint(admin_user, f"http://receptor.example.com:{port}/h")
        try:
            [delivery_id] = emit_payment_event(f"payment.received:{mode}")
            assert webhooks_out.deliver(delivery_id) == "retry", mode
        finally:
            if server:
                server.stop()
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        errors[mode] = (delivery.last_status_code, delivery.last_error)
    assert set(errors.values()) == {(None, "No se pudo conectar con el receptor.")}, errors


def test_an_error_answer_keeps_its_status_and_nothing_the_receiver_wrote(dns, settings, admin_user, client):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    dns.answers["receptor.example.com"] = ["127.0.0.1"]
    server = Misbehaving("error-body")
    try:
        endpoint = _endpoint(admin_user, f"http://receptor.example.com:{server.port}/h")
        [delivery_id] = emit_payment_event()
        assert webhooks_out.deliver(delivery_id) == "retry"
    finally:
        server.stop()
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500 Internal Server Error")
    client.force_login(admin_user)
    page = client.get(reverse("cobranza:webhook_detail", args=[endpoint.pk])).content.decode()
    assert "HTTP 500 Internal Server Error" in page
    assert "hunter2" not in page and "db-internal-7" not in page
