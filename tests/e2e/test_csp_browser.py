"""Content-Security-Policy: every page the staff and the debtors can reach is served with a
strict policy (only our own origin, no inline script) and Chromium reports no violation on
any of them: every script is a static file, every style a stylesheet or a style attribute.

The pages are found the way a person finds them: from the home page, following every link
of the site (as an administrator, who sees everything, and as a collector, whose pages
differ), plus the debtor's portal from a reminder's link.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urlsplit

import pytest

from cobranza.portal import links
from tests.cobranza.test_api import build_client_data
from tests.e2e.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e

# Downloads (PDF, CSV, XLSX), logging out, files, and the admin's pages of single objects
# (Django's own templates, the same on every object: its index and lists are visited).
SKIP = re.compile(
    r"/salir/|\.(pdf|csv|xlsx|zip)$|/pdf/?$|export|descargar|/static/|/media/|/admin/logout|^/admin/[^/]+/[^/]+/."
)
MAX_PAGES = 150
# What Chromium logs for a blocked script, style, image, font or connection.
VIOLATION = re.compile(r"Content.Security.Policy|violates the following", re.IGNORECASE)
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _crawl(page, base: str, start: list[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Visit every same-site page reachable from ``start``: {path: violations}, and the paths
    whose response had no Content-Security-Policy header."""
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text) if VIOLATION.search(msg.text) else None)
    page.add_init_script(RECORD_VIOLATIONS)
    seen, queue = set(start), deque(start)
    found: dict[str, list[str]] = {}
    without_header: set[str] = set()
    while queue and len(found) < MAX_PAGES:
        path = queue.popleft()
        messages.clear()
        try:
            response = page.goto(base + path, wait_until="networkidle")
        except Exception:  # noqa: BLE001 - a download or an aborted navigation: not a page
            continue
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        if "content-security-policy" not in response.headers:
            without_header.add(path)
        found[path] = messages + page.evaluate("window.__cspViolations || []")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            href = urldefrag(href)[0]
            parts = urlsplit(href)
            if not href.startswith(base) or SKIP.search(parts.path):
                continue
            if parts.path not in seen:
                seen.add(parts.path)
                queue.append(parts.path)
    return found, without_header


# Blocked on purpose: Redoc's bundle draws the "API docs by Redocly" logo from its CDN.
EXPECTED = {"/api/redoc/": re.compile(r"https://cdn\.redoc\.ly/redoc/logo-mini\.svg")}


def _assert_clean(found, without_header, minimum: int):
    assert len(found) >= minimum, sorted(found)
    assert not without_header, sorted(without_header)
    for path, expected in EXPECTED.items():
        found[path] = [v for v in found.get(path, []) if not expected.search(v)]
    violations = {path: v for path, v in found.items() if v}
    assert not violations, violations


def test_no_page_of_the_staff_breaks_the_content_security_policy(page, live_server, admin_user, gerente, gestora):
    data = build_client_data(by=gerente, collector=gestora)
    login(page, live_server, "admin", PASSWORD)
    start = ["/", f"/clientes/{data['client'].pk}/", "/api/docs/", "/api/redoc/", "/admin/"]
    found, without_header = _crawl(page, live_server.url, start)
    print(f"{len(found)} pages:", " ".join(sorted(found)))
    # The pages behind a login, the client's own, the dunning set-up, the API documentation.
    assert any(p.startswith("/clientes/") for p in found) and any(p.startswith("/api/") for p in found)
    _assert_clean(found, without_header, minimum=30)


def test_no_page_of_a_collector_or_the_portal_breaks_it(page, live_server, gerente, gestora, settings):
    settings.SELF_SERVICE_RATE_LIMIT = 10_000
    data = build_client_data(by=gerente, collector=gestora)
    login(page, live_server, "gestora", PASSWORD)
    found, without_header = _crawl(page, live_server.url, ["/"])
    _assert_clean(found, without_header, minimum=10)

    portal = urlsplit(links.link_for(data["client"])).path
    found, without_header = _crawl(page, live_server.url, [portal, "/cuenta/entrar/"])
    assert portal in found
    _assert_clean(found, without_header, minimum=2)
