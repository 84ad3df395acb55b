"""Collections rules, each defined once, in every form the code needs: SQL text for the
set-based statements, ORM expressions for querysets, and plain Python for one object. Each
form comes from the same constants, and tests/cobranza/test_rules.py checks that the forms
agree on one fixture. Ledger rules (aging buckets, days late) are in ``accounts.rules``.

- **Effective delinquency profile** (docs/domain.md#late-payers): the collector's override,
  else the nightly computed profile, else "new" (a client never classified has not enough
  history).
- **Promise kept** (docs/domain.md#promise-kept-rate): promises to pay and term extensions
  are judged on their date; kept ÷ judged, judged = kept + partly kept + broken.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf

from cobranza.models import ClientProfile, Commitment, CommitmentKind, CommitmentStatus, Profile

# --- effective delinquency profile --------------------------------------------------------------

DEFAULT_PROFILE = Profile.NEW


def effective_profile_sql(alias: str) -> str:
    """SQL of the effective profile, for a client LEFT JOINed to its profile row as ``alias``
    (no row: both columns are NULL, so the default applies)."""
    return f"COALESCE(NULLIF({alias}.override, ''), {alias}.computed, '{DEFAULT_PROFILE}')"


def effective_profile_expr(prefix: str = "profile__"):
    """ORM expression of the effective profile; ``prefix`` leads from the queryset's model to
    the client's ``ClientProfile`` (``profile__`` on clients, ``client__profile__`` on invoices)."""
    return Coalesce(NullIf(F(f"{prefix}override"), Value("")), F(f"{prefix}computed"), Value(DEFAULT_PROFILE))


def effective_profile_q(profile: str, prefix: str = "profile__") -> Q:
    """ORM filter: the effective profile is ``profile`` (an index-friendly form of
    ``effective_profile_expr() == profile``)."""
    q = Q(**{f"{prefix}override": profile}) | Q(**{f"{prefix}override": "", f"{prefix}computed": profile})
    if profile == DEFAULT_PROFILE:  # a client never classified
        q |= Q(**{f"{prefix}isnull": True})
    return q


def effective_profile(row: ClientProfile | None) -> str:
    """Python form, for one client's profile row (``None``: never classified)."""
    return row.effective if row is not None else DEFAULT_PROFILE


# --- promise kept ------------------------------------------------------------------------------

# Commitments that count as promises: a promise to pay and a term extension (a promise of a new
# date). Payment plans are judged instalment by instalment, not here.
PROMISE_KINDS = (CommitmentKind.PROMISE, CommitmentKind.EXTENSION)
JUDGED_STATUSES = (CommitmentStatus.KEPT, CommitmentStatus.PARTIAL, CommitmentStatus.BROKEN)


def promise_kept_aggregates(within: Q | None = None) -> dict:
    """``kept`` and ``judged`` as aggregate expressions, so grouped queries (per collector, per
    client) use the very same rule; ``within`` narrows both."""
    within = within or Q()
    return {
        "kept": Count("id", filter=within & Q(status=CommitmentStatus.KEPT)),
        "judged": Count("id", filter=within & Q(status__in=JUDGED_STATUSES)),
    }


def promise_is_judged(commitment: Commitment) -> bool:
    return commitment.kind in PROMISE_KINDS and commitment.status in JUDGED_STATUSES


def promise_is_kept(commitment: Commitment) -> bool:
    return commitment.kind in PROMISE_KINDS and commitment.status == CommitmentStatus.KEPT


def resolved_in(start: dt.date, end: dt.date) -> Q:
    """Judged (or cancelled) between ``start`` and ``end``, inclusive: the period a promise counts in."""
    return Q(resolved_on__gte=start, resolved_on__lte=end)


def promises_resolved(start: dt.date, end: dt.date, *, clients: Q | None = None) -> QuerySet[Commitment]:
    """The promises judged between ``start`` and ``end`` (inclusive) whose client matches
    ``clients`` (a ``Q`` through ``client__``). Every page that shows a promise-kept rate reads
    it from here: the rate is a count of promises, so it is not split by currency, and a
    promise belongs to the client's collector (who answers for the client, whoever typed it
    in: promises made on the debtor portal or imported have no author)."""
    return Commitment.objects.filter(clients or Q(), resolved_in(start, end), kind__in=PROMISE_KINDS)


def promise_kept_counts(start: dt.date, end: dt.date, *, clients: Q | None = None) -> tuple[int, int]:
    """``(kept, judged)`` in the period (one query)."""
    row = promises_resolved(start, end, clients=clients).aggregate(**promise_kept_aggregates())
    return row["kept"], row["judged"]


def promise_kept_by_collector(start: dt.date, end: dt.date, *, clients: Q | None = None) -> dict:
    """``{collector id (None: unassigned clients): (kept, judged)}`` in the period (one query)."""
    rows = (
        promises_resolved(start, end, clients=clients)
        .order_by()
        .values("client__collector")
        .annotate(**promise_kept_aggregates())
    )
    return {r["client__collector"]: (r["kept"], r["judged"]) for r in rows}
