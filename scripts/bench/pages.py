"""Server time and query count of the hot pages, in process (django.test.Client, DEBUG off)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.http import urlencode

from accounts.views import SECTIONS as CLIENT_SECTIONS


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    user: str  # "manager" | "collector"
    url: str
    goal_ms: float
    goal_queries: int | None = None  # a ceiling on the queries of one request, when there is one


def specific_searches(big_client_id: int) -> list[tuple[str, str, str]]:
    """``(key, label, q)``: searches for one thing, as a collector types them in the header —
    part of one of the biggest client's invoice numbers, and a client's name with a typo
    (one letter left out) — beside the broad one, which matches thousands of clients."""
    from django.db.models.functions import Length

    from accounts.models import Client, Invoice

    out = []
    number = Invoice.objects.filter(client_id=big_client_id).order_by("-id").values_list("number", flat=True).first()
    if number and len(number) > 4:
        part = number[1:]  # without the series letter: "any part of an invoice number"
        out.append(("client_list_search_invoice", f"Client list, search «{part}» (part of an invoice number)", part))
    name = (
        Client.objects.annotate(n=Length("legal_name"))
        .filter(n__gte=12)
        .order_by("id")
        .values_list("legal_name", flat=True)
        .first()
    )
    if name:
        words = name.split()
        word = max(words, key=len)
        typo = " ".join(w if w is not word else w[:2] + w[3:] for w in words[:3])
        out.append(("client_list_search_typo", f"Client list, search «{typo}» (a name with a typo)", typo))
    return out


def suggest_searches(search: str, specific: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``(key, label, q)``: the client list's searches — the specific ones and the broad word —
    sent to the header box's suggestions instead (``client_suggest``)."""
    out = [
        (key.replace("client_list_search", "client_suggest"), f"Header suggestions, search «{q}»", q)
        for key, _label, q in specific
    ]
    out.append(("client_suggest_broad", f"Header suggestions, search «{search}» (a broad word)", search))
    return out


def pages(*, big_client_id: int, search: str, specific: list[tuple[str, str, str]] = ()) -> list[Page]:
    return [
        Page("dashboard", "Manager dashboard (cobranza:dashboard)", "manager", reverse("cobranza:dashboard"), 300),
        Page(
            "worklist_collector",
            "Worklist, collector with the biggest portfolio",
            "collector",
            reverse("cobranza:worklist"),
            100,
        ),
        Page("worklist_manager", "Worklist, manager (all collectors)", "manager", reverse("cobranza:worklist"), 100),
        Page("client_list", "Client list, first page, default sort", "manager", reverse("client_list"), 100),
        Page(
            "client_list_search",
            f"Client list, search «{search}»",
            "manager",
            reverse("client_list") + f"?q={search}",
            100,
        ),
        *(
            Page(key, label, "manager", reverse("client_list") + "?" + urlencode({"q": q}), 30)
            for key, label, q in specific
        ),
        # The same searches as the header box's suggestions (the best 8, as the collector types;
        # docs/domain.md#search): ≤ 30 ms.
        *(
            Page(key, label, "manager", reverse("client_suggest") + "?" + urlencode({"q": q}), 30)
            for key, label, q in suggest_searches(search, specific)
        ),
        # The client page is a summary plus sections loaded when their tab is opened
        # (docs/domain.md#the-client-page); the summary's goal: ≤ 60 ms and ≤ 12 queries.
        Page(
            "client_detail",
            "Client page summary (client with the most invoices)",
            "manager",
            reverse("client_detail", args=[big_client_id]),
            60,
            goal_queries=12,
        ),
        *(
            Page(
                f"client_section_{tab}",
                f"Client page, section «{tab}» (same client)",
                "manager",
                reverse(f"client_section_{tab}", args=[big_client_id]),
                100,
            )
            for tab in CLIENT_SECTIONS
        ),
    ]


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def measure(client: Client, url: str, *, warmup: int, repeat: int, budget_s: float = 150) -> dict:
    """``warmup`` unmeasured requests, then ``repeat`` measured ones; a page so slow that the
    repeats would not fit in ``budget_s`` gets fewer (at least 3), and says so."""
    first = first_ms = None
    for i in range(warmup):
        t0 = time.perf_counter()
        r = client.get(url)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url} -> {r.status_code}")
        first = time.perf_counter() - t0
        if i == 0:
            first_ms = first * 1000
        if i == 0 and first > 2:
            break  # a multi-second page is warm after one request
    if first and first * repeat > budget_s:
        repeat = max(3, int(budget_s / first))
    times, queries, sql_ms = [], [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            r = client.get(url)
            elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"GET {url} -> {r.status_code}")
        times.append(elapsed * 1000)
        queries.append(len(ctx.captured_queries))
        sql_ms.append(sum(float(q.get("time") or 0) for q in ctx.captured_queries) * 1000)
    return {
        "times_ms": times,
        "queries": queries,
        "sql_ms": sql_ms,
        "first_ms": first_ms,
        "captured": ctx.captured_queries,
    }


def query_count(client: Client, url: str) -> int:
    client.get(url)  # warm caches (sessions, content types)
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return len(ctx.captured_queries)


def slowest_queries(captured: list[dict], n: int = 3) -> list[tuple[float, str]]:
    """The slowest queries of one captured request, by the time Django measured."""
    rows = [(float(q.get("time") or 0) * 1000, q["sql"]) for q in captured]
    return sorted(rows, key=lambda r: -r[0])[:n]


def explain(sql: str) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(r[0] for r in cur.fetchall())
