"""The collections rules, each defined once (docs/domain.md#collections-rules).

As in ``accounts.rules`` (the ledger's rules, which these build on), every rule is written
once with its forms side by side, from one table of constants:

- ``*_sql``: a raw-SQL fragment taking table aliases and the placeholder of each runtime
  value (``today="%(today)s"``); the only literals written are model choices;
- ``*_q`` / ``*_expr``: the ORM form;
- a plain Python function on model instances or values.

``tests/cobranza/test_rules.py`` checks that the forms agree on one fixture of edge cases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, NullIf

from accounts.models import Client, ClientStatus, Invoice
from accounts.rules import (
    OVERDUE_BUCKETS,
    aging_bucket_of,
    is_open_invoice,
    open_invoice_q,
    open_invoice_sql,
    sql_in,
    sql_literal,
)
from cobranza.models import (
    ClientDunning,
    ClientProfile,
    Commitment,
    CommitmentKind,
    CommitmentStatus,
    InvoiceHold,
    Policy,
    Profile,
)


def _prefix(alias: str | None) -> str:
    return f"{alias}." if alias else ""


# --- effective delinquency profile (docs/domain.md#delinquency-profiles) --------------------------
# The collector's override, else the computed profile, else "new": a client never classified
# (no profile row) has, by definition, not enough history.

DEFAULT_PROFILE: str = Profile.NEW


def effective_profile_sql(profile: str | None = "cp") -> str:
    """``profile``: the alias of a ``ClientProfile`` row, LEFT JOINed (NULL columns when the
    client has none); None for the profile table's own columns (an UPDATE of that table)."""
    p = _prefix(profile)
    return f"COALESCE(NULLIF({p}override, ''), {p}computed, {sql_literal(DEFAULT_PROFILE)})"


def effective_profile_expr(prefix: str = "profile__") -> Coalesce:
    """On a Client queryset (``prefix="profile__"``) or through a relation
    (``"client__profile__"``); ``prefix=""`` on a ClientProfile queryset."""
    return Coalesce(NullIf(F(f"{prefix}override"), Value("")), F(f"{prefix}computed"), Value(DEFAULT_PROFILE))


def effective_profile_q(profile: str, prefix: str = "profile__") -> Q:
    """Clients (through ``prefix``) whose effective profile is ``profile``, as a filter that
    needs no annotation."""
    q = Q(**{f"{prefix}override": profile}) | Q(**{f"{prefix}override": "", f"{prefix}computed": profile})
    if profile == DEFAULT_PROFILE:
        q |= Q(**{f"{prefix.removesuffix('__')}__isnull": True}) if prefix else Q(pk__isnull=True)
    return q


def effective_profile(row: ClientProfile | None) -> str:
    """Python form, for one client's profile row (``None``: never classified); the row's own
    ``effective`` is the definition, kept beside the model that needs it."""
    return row.effective if row is not None else DEFAULT_PROFILE


def client_effective_profile(client: Client) -> str:
    """The client's effective profile (reads ``client.profile``: select or prefetch it)."""
    return effective_profile(getattr(client, "profile", None))


# --- effective policy (docs/domain.md#effective-policy) -------------------------------------------
# The client's own policy, else the active policy of its effective profile, else its
# segment's. An own or segment policy that is inactive still wins (and the ladder then does
# nothing); an inactive profile policy is passed over.

POLICY_PRECEDENCE = ("own", "profile", "segment")


def effective_policy_joins_sql(client: str = "c", *, dunning: str = "cd", profile: str = "cp") -> str:
    """The LEFT JOINs ``effective_policy_sql`` reads (``dunning``/``profile`` aliases are the
    caller's to use, e.g. the pause in ``cd.paused_until``)."""
    t = {
        "dunning": ClientDunning._meta.db_table,
        "profile": ClientProfile._meta.db_table,
        "policy": Policy._meta.db_table,
    }
    return f"""LEFT JOIN {t["dunning"]} {dunning} ON {dunning}.client_id = {client}.id
        LEFT JOIN {t["profile"]} {profile} ON {profile}.client_id = {client}.id
        LEFT JOIN {t["policy"]} ep_profile ON ep_profile.profile <> '' AND ep_profile.is_active
                                AND ep_profile.profile = {effective_profile_sql(profile)}
        LEFT JOIN {t["policy"]} ep_segment ON ep_segment.segment_id = {client}.segment_id"""


def effective_policy_sql(*, dunning: str = "cd") -> str:
    """The effective policy id, over ``effective_policy_joins_sql``."""
    return f"COALESCE({dunning}.policy_id, ep_profile.id, ep_segment.id)"


def profile_policy_q(profile) -> Q:
    """The policy that applies to ``profile`` (a value or an expression)."""
    return Q(is_active=True, profile=profile) & ~Q(profile="")


def effective_policy_expr(prefix: str = "") -> Coalesce:
    """The effective policy id, on a Client queryset (or through ``prefix="client__"``)."""
    profile = Coalesce(
        NullIf(OuterRef(f"{prefix}profile__override"), Value("")),
        OuterRef(f"{prefix}profile__computed"),
        Value(DEFAULT_PROFILE),
    )
    by_profile = Policy.objects.filter(profile_policy_q(profile)).values("pk")[:1]
    by_segment = Policy.objects.filter(segment_id=OuterRef(f"{prefix}segment_id")).values("pk")[:1]
    return Coalesce(F(f"{prefix}dunning__policy_id"), Subquery(by_profile), Subquery(by_segment))


def profile_policy(policies: Iterable[Policy], profile: str) -> Policy | None:
    return next((p for p in policies if p.profile and p.is_active and p.profile == profile), None)


def effective_policy(*, own: Policy | None, profile_policy: Policy | None, segment_policy: Policy | None):
    """``profile_policy``: the one ``profile_policy()`` / ``profile_policy_q`` found."""
    return own or profile_policy or segment_policy


# --- clients the ladder acts on (docs/domain.md#dunning-ladder) -----------------------------------
# Written off: nothing to collect. With an agency or in legal: they contact the client now, our
# reminders would be a second voice. Paused: until the day after ``paused_until``.

LADDER_STOPPED_STATUSES: tuple[str, ...] = (ClientStatus.WRITTEN_OFF, ClientStatus.AGENCY, ClientStatus.LEGAL)


def pause_active_sql(client: str = "c", today: str = "%(today)s") -> str:
    # A subquery rather than a condition on a LEFT JOINed row: the planner estimates an
    # anti-join well, whereas a filter on a null-extended column was estimated from the paused
    # rows alone (~1 client of 100,000 kept instead of 99,000), and every join after it in one
    # statement became a nested loop.
    return (
        f"EXISTS (SELECT 1 FROM {ClientDunning._meta.db_table} pd "
        f"WHERE pd.client_id = {client}.id AND pd.paused_until >= {today})"
    )


def pause_active(dunning: ClientDunning | None, today: dt.date) -> bool:
    return bool(dunning is not None and dunning.paused_until and dunning.paused_until >= today)


def ladder_client_sql(client: str = "c", *, today: str = "%(today)s") -> str:
    return f"(NOT {sql_in(f'{client}.status', LADDER_STOPPED_STATUSES)} AND NOT {pause_active_sql(client, today)})"


def ladder_client_q(today: dt.date, prefix: str = "") -> Q:
    return ~Q(**{f"{prefix}status__in": LADDER_STOPPED_STATUSES}) & ~Q(**{f"{prefix}dunning__paused_until__gte": today})


def is_ladder_client(client: Client, today: dt.date) -> bool:
    return client.status not in LADDER_STOPPED_STATUSES and not pause_active(getattr(client, "dunning", None), today)


# --- invoice on hold (docs/domain.md#invoice-hold) ------------------------------------------------
# Held until the end of ``until`` (inclusive), or until released when it has no date.


def hold_active_sql(invoice: str = "i", today: str = "%(today)s") -> str:
    return (
        f"EXISTS (SELECT 1 FROM {InvoiceHold._meta.db_table} h "
        f"WHERE h.invoice_id = {invoice}.id AND (h.until IS NULL OR h.until >= {today}))"
    )


def hold_active_q(today: dt.date, invoice: str = "pk") -> Q:
    """On an Invoice queryset (``invoice`` is the outer invoice's id field)."""
    held = InvoiceHold.objects.filter(Q(until__isnull=True) | Q(until__gte=today), invoice_id=OuterRef(invoice))
    return Q(Exists(held))


def hold_is_active(hold: InvoiceHold | None, today: dt.date) -> bool:
    return hold is not None and (hold.until is None or hold.until >= today)


# --- open commitment (docs/domain.md#commitments) -------------------------------------------------
# A promise, plan or extension still running: reminders pause for its invoices.

COMMITMENT_OPEN: str = CommitmentStatus.OPEN


def open_commitment_sql(invoice: str = "i") -> str:
    """The invoice ``invoice`` is in an open commitment."""
    through = Commitment.invoices.through._meta.db_table
    return (
        f"EXISTS (SELECT 1 FROM {through} ci JOIN {Commitment._meta.db_table} cm ON cm.id = ci.commitment_id "
        f"WHERE ci.invoice_id = {invoice}.id AND cm.status = {sql_literal(COMMITMENT_OPEN)})"
    )


def open_commitment_exists(invoice: str = "pk") -> Exists:
    """On an Invoice queryset (``invoice`` is the outer invoice's id field)."""
    return Exists(
        Commitment.invoices.through.objects.filter(invoice_id=OuterRef(invoice), commitment__status=COMMITMENT_OPEN)
    )


def open_commitment_q(invoice: str = "pk") -> Q:
    return Q(open_commitment_exists(invoice))


def commitment_is_open(commitment: Commitment) -> bool:
    return commitment.status == COMMITMENT_OPEN


def in_open_commitment(invoice: Invoice) -> bool:
    """Reads ``invoice.commitments`` (prefetch it for many invoices)."""
    return any(commitment_is_open(c) for c in invoice.commitments.all())


# --- dunnable invoice (docs/domain.md#dunnable-invoice) -------------------------------------------
# What a reminder may be about today: an open invoice (open or partially paid, with a
# balance; so not paid, cancelled, written off or disputed), not on hold, not in an open
# commitment. The policy's tolerance (minimum balance) is the policy's own condition.


def dunnable_invoice_sql(invoice: str = "i", today: str = "%(today)s") -> str:
    return (
        f"({open_invoice_sql(invoice)} AND NOT {hold_active_sql(invoice, today)} "
        f"AND NOT {open_commitment_sql(invoice)})"
    )


def dunnable_invoice_q(today: dt.date) -> Q:
    """On an Invoice queryset."""
    return open_invoice_q() & ~hold_active_q(today) & ~open_commitment_q()


def is_dunnable_invoice(invoice: Invoice, today: dt.date) -> bool:
    """Reads ``invoice.hold`` and ``invoice.commitments`` (select/prefetch them)."""
    return (
        is_open_invoice(invoice)
        and not hold_is_active(getattr(invoice, "hold", None), today)
        and not in_open_commitment(invoice)
    )


# --- above tolerance (docs/domain.md#dunnable-invoice) --------------------------------------------
# A balance below the effective policy's tolerance is not worth acting on: no reminder, and no
# weight on the worklist. A client without a policy gets the field's default.


def above_tolerance_sql(invoice: str = "i", policy: str = "p") -> str:
    default = Policy._meta.get_field("tolerance").default
    # A Decimal constant of the code, written as a numeric literal.
    return f"({invoice}.open_balance >= COALESCE({policy}.tolerance, {Decimal(default):f}))"


def is_above_tolerance(invoice: Invoice, policy: Policy | None) -> bool:
    tolerance = policy.tolerance if policy is not None else Policy._meta.get_field("tolerance").default
    return invoice.open_balance >= tolerance


# --- amount at risk (docs/domain.md#amount-at-risk) ----------------------------------------------
# The overdue balance weighted by how likely it is to be lost as it ages: the share of each
# aging bucket's balance a collections manager expects to lose if nobody acts. Counted over the
# invoices the ladder would act on (dunnable, overdue, above the policy's tolerance), per
# currency: amounts in different currencies are never added together.

LOSS_WEIGHTS: dict[str, Decimal] = {
    "1_30": Decimal("0.05"),
    "31_60": Decimal("0.15"),
    "61_90": Decimal("0.30"),
    "91_120": Decimal("0.50"),
    "120_plus": Decimal("0.75"),
}


def loss_weight_sql(on: dt.date, due_date: str = "i.due_date") -> tuple[str, list]:
    """``(sql, params)``: the loss weight of an invoice due on ``due_date``, on ``on``
    (positional placeholders; 0 for an invoice not overdue)."""
    whens, params = [], []
    for bucket in reversed(OVERDUE_BUCKETS):
        whens.append(f"WHEN {due_date} <= %s THEN {LOSS_WEIGHTS[bucket.code]}")
        params.append(on - dt.timedelta(days=bucket.min_days))
    return f"(CASE {' '.join(whens)} ELSE 0 END)", params


def loss_weight(due_date: dt.date, on: dt.date) -> Decimal:
    return LOSS_WEIGHTS.get(aging_bucket_of(due_date, on), Decimal("0"))


# --- step due (docs/domain.md#planning) -----------------------------------------------------------
# A ladder step falls due for an invoice on its day (due date + the step's offset in days) and
# stays due after it — except a reminder before the due date (negative offset), which is stale
# once the invoice is overdue. (A broken promise may also make a step due early: the planner's
# ladder bumps, not part of this rule.)


def step_day_reached_sql(invoice: str = "i", step: str = "s", today: str = "%(today)s") -> str:
    return f"(({invoice}.due_date + {step}.offset_days) <= {today})"


def stale_pre_due_sql(invoice: str = "i", step: str = "s", today: str = "%(today)s") -> str:
    return f"({step}.offset_days < 0 AND {invoice}.due_date < {today})"


def step_day(due_date: dt.date, offset_days: int) -> dt.date:
    return due_date + dt.timedelta(days=offset_days)


def step_day_reached(due_date: dt.date, offset_days: int, day: dt.date) -> bool:
    return step_day(due_date, offset_days) <= day


def stale_pre_due(due_date: dt.date, offset_days: int, day: dt.date) -> bool:
    return offset_days < 0 and due_date < day


def step_due(due_date: dt.date, offset_days: int, day: dt.date) -> bool:
    """The Python form of ``step_day_reached_sql AND NOT stale_pre_due_sql``."""
    return step_day_reached(due_date, offset_days, day) and not stale_pre_due(due_date, offset_days, day)


# --- promise kept (docs/domain.md#promise-kept-rate) ----------------------------------------------
# Promises are promises to pay and term extensions (a promise of a new date); a payment plan
# is judged installment by installment, not as one promise. A promise is judged once it is
# kept, kept in part or broken (open and cancelled ones are not); kept means fully paid by
# its date. Rate = kept ÷ judged.

PROMISE_KINDS: tuple[str, ...] = (CommitmentKind.PROMISE, CommitmentKind.EXTENSION)
KEPT_STATUS: str = CommitmentStatus.KEPT
JUDGED_STATUSES: tuple[str, ...] = (CommitmentStatus.KEPT, CommitmentStatus.PARTIAL, CommitmentStatus.BROKEN)


def promise_judged_sql(commitment: str = "m") -> str:
    p = _prefix(commitment)
    return f"({sql_in(f'{p}kind', PROMISE_KINDS)} AND {sql_in(f'{p}status', JUDGED_STATUSES)})"


def promise_kept_sql(commitment: str = "m") -> str:
    p = _prefix(commitment)
    return f"({sql_in(f'{p}kind', PROMISE_KINDS)} AND {p}status = {sql_literal(KEPT_STATUS)})"


def promise_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}kind__in": PROMISE_KINDS})


def promise_judged_q(prefix: str = "") -> Q:
    return promise_q(prefix) & Q(**{f"{prefix}status__in": JUDGED_STATUSES})


def promise_kept_q(prefix: str = "") -> Q:
    return promise_q(prefix) & Q(**{f"{prefix}status": KEPT_STATUS})


# Not kept: judged, but not kept in full (broken or kept in part). What weighs on a client's
# worklist score and raises the early warning of repeated broken promises.
NOT_KEPT_STATUSES: tuple[str, ...] = tuple(s for s in JUDGED_STATUSES if s != KEPT_STATUS)


def promise_not_kept_q(prefix: str = "") -> Q:
    return promise_q(prefix) & Q(**{f"{prefix}status__in": NOT_KEPT_STATUSES})


def is_not_kept_promise(commitment: Commitment) -> bool:
    return commitment.kind in PROMISE_KINDS and commitment.status in NOT_KEPT_STATUSES


def is_judged_promise(commitment: Commitment) -> bool:
    return commitment.kind in PROMISE_KINDS and commitment.status in JUDGED_STATUSES


def is_kept_promise(commitment: Commitment) -> bool:
    return commitment.kind in PROMISE_KINDS and commitment.status == KEPT_STATUS


def promise_kept_aggregates(within: Q | None = None) -> dict:
    """``kept`` and ``judged`` as aggregates over commitments (grouped queries — per
    collector, per client — use the very same rule). ``within`` narrows both."""
    within = within or Q()
    return {
        "kept": Count("id", filter=within & promise_kept_q()),
        "judged": Count("id", filter=within & promise_judged_q()),
    }


def resolved_between_q(start: dt.date, end: dt.date, prefix: str = "") -> Q:
    """Commitments resolved in ``[start, end]`` (the window of a promise-kept rate)."""
    return Q(**{f"{prefix}resolved_on__gte": start, f"{prefix}resolved_on__lte": end})


# --- pacing (docs/domain.md#pacing) ---------------------------------------------------------------
# One ladder step per client per local day at the most, whatever the channel and the policy (the
# floor); a policy may ask for more days between two, and escalation steps (final letter,
# agency, legal) keep their own spacing. Counted on the notices actually sent, by the client's
# local day: the next may go out from the start of the local day ``days`` after the last one.

PACING_FLOOR_DAYS: int = 1


def pacing_days_sql(policy: str = "p", field: str = "min_days_between_contacts") -> str:
    """The policy's spacing in days, never below the floor."""
    return f"GREATEST({policy}.{field}, {PACING_FLOOR_DAYS})"


def pacing_days(value: int | None) -> int:
    return max(value or PACING_FLOOR_DAYS, PACING_FLOOR_DAYS)


def spaced_sql(last_day: str, today: str, days: str) -> str:
    """``last_day`` (a local date, NULL: never contacted) is at least ``days`` before ``today``."""
    return f"({last_day} IS NULL OR {today} - {last_day} >= {days})"


def spaced(last_day: dt.date | None, today: dt.date, days: int) -> bool:
    return last_day is None or (today - last_day).days >= days


def next_contact_day(last_day: dt.date, days: int) -> dt.date:
    """The first local day a step may go out after one that went out on ``last_day``."""
    return last_day + dt.timedelta(days=days)


# --- step applies (docs/domain.md#pacing) ---------------------------------------------------------
# A step added, re-activated or moved to other days applies only to invoices whose day for it
# comes on or after the change (``applies_from``); an administrator's catch-up clears it.


def step_applies_sql(invoice: str = "i", step: str = "s") -> str:
    return f"({step}.applies_from IS NULL OR ({invoice}.due_date + {step}.offset_days) >= {step}.applies_from)"


def step_applies(due_date: dt.date, offset_days: int, applies_from: dt.date | None) -> bool:
    return applies_from is None or step_day(due_date, offset_days) >= applies_from
