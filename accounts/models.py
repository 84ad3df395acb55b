"""The debtor ledger: segments, clients, contacts, invoices, payments and the timeline.

Models hold fields, choices and the database constraints that keep the ledger honest. Every
write goes through ``accounts.services``; reads with logic live in ``accounts.selectors``.
"""

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal

from babel.numbers import list_currencies
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from accounts import clock, numbers, texts
from accounts.validation import OneQueryConstraints

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")

currency_validator = RegexValidator(
    r"^[A-Z]{3}$", _("Use un código de moneda ISO 4217 de tres letras (MXN, EUR, USD).")
)


@functools.cache
def iso_currencies() -> frozenset[str]:
    """ISO 4217 currency codes, from the CLDR data Babel ships (kept current with each Babel
    release), less XXX (no currency) and XTS (reserved for testing)."""
    return frozenset(list_currencies()) - {"XXX", "XTS"}


def validate_currency(value: str) -> None:
    """A currency code ISO 4217 knows (the shape alone let ``ZZZ`` in). A value of the wrong
    shape is left to ``currency_validator``, which says so."""
    if isinstance(value, str) and len(value) == 3 and value.isupper() and value not in iso_currencies():
        raise ValidationError(
            _("«%(code)s» no es un código de moneda ISO 4217 (MXN, EUR, USD...)."),
            code="currency",
            params={"code": value},
        )


def max_amount() -> Decimal:
    return Decimal(settings.MONEY_MAX_AMOUNT)


def validate_amount(value: Decimal | None) -> None:
    """At most MONEY_MAX_AMOUNT in one invoice, payment or credit limit: a mistyped or forged
    10,000,000,000 would otherwise distort every balance and report."""
    if value is not None and value > max_amount():
        raise ValidationError(
            _("El importe supera el máximo permitido (%(limit)s)."),
            code="max_amount",
            params={"limit": f"{max_amount():,}"},
        )


# Fields of a ledger row that hold money or its currency, and their rule.
MONEY_RULES = {"currency": validate_currency, "amount": validate_amount, "credit_limit": validate_amount}


def money_errors(obj, *, exclude=()) -> dict[str, list[ValidationError]]:
    """The money rules above broken by ``obj`` (a Client, Invoice or Payment), by field."""
    errors: dict[str, list[ValidationError]] = {}
    for name, rule in MONEY_RULES.items():
        if name in exclude or not hasattr(obj, name):
            continue
        try:
            rule(getattr(obj, name))
        except ValidationError as exc:
            errors[name] = [exc]
    return errors


country_validator = RegexValidator(r"^[A-Z]{2}$", _("Use un código de país ISO 3166 de dos letras (MX, ES, US)."))


# The time zone of a country's capital (or its most populous zone): a new client's default when
# only its country is known (an import, the API). Its hours and holidays follow the country's
# contact rules (docs/domain.md#contact-rules); a different zone is set on the client.
COUNTRY_TIME_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "BO": "America/La_Paz",
    "CL": "America/Santiago",
    "CO": "America/Bogota",
    "CR": "America/Costa_Rica",
    "DO": "America/Santo_Domingo",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "GT": "America/Guatemala",
    "HN": "America/Tegucigalpa",
    "MX": "America/Mexico_City",
    "NI": "America/Managua",
    "PA": "America/Panama",
    "PE": "America/Lima",
    "PR": "America/Puerto_Rico",
    "PY": "America/Asuncion",
    "SV": "America/El_Salvador",
    "US": "America/New_York",
    "UY": "America/Montevideo",
    "VE": "America/Caracas",
}
DEFAULT_TIME_ZONE = "America/Mexico_City"


def default_time_zone(country: str) -> str:
    return COUNTRY_TIME_ZONES.get((country or "").upper(), DEFAULT_TIME_ZONE)


@functools.cache
def _time_zones() -> frozenset[str]:
    # available_timezones() walks the tz database on disk (~0.1 s a call); it does not change
    # while the process runs, and bulk checks call this for every batch.
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(_("«%(tz)s» no es una zona horaria válida."), params={"tz": value})


def _currency_check(name: str, field: str = "currency") -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__regex": r"^[A-Z]{3}$"}), name=name)


def days_between(later: dt.date, earlier: dt.date) -> int:
    """Whole days from ``earlier`` to ``later``: the Python form of ``accounts.rules``' day rules."""
    return (later - earlier).days


def days_late(due_date: dt.date, on: dt.date) -> int:
    """Days past due on ``on``; 0 until the day after the due date (docs/domain.md#aging-buckets)."""
    return max(days_between(on, due_date), 0)


class Language(models.TextChoices):
    ES = "es", _("Español")
    EN = "en", _("Inglés")


class Channel(models.TextChoices):
    EMAIL = "email", _("Correo electrónico")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    PHONE = "phone", _("Teléfono")
    LETTER = "letter", _("Carta")


class Segment(models.Model):
    """A group of clients that share a dunning ladder (policy)."""

    code = models.SlugField(_("código"), max_length=40, unique=True)
    name = models.CharField(_("nombre"), max_length=80, unique=True)
    description = models.TextField(_("descripción"), blank=True)
    # Used by the worklist to rank clients: a key account weighs more than a sporadic one.
    priority_weight = models.PositiveSmallIntegerField(_("peso de prioridad"), default=1)
    position = models.PositiveSmallIntegerField(_("orden"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("segmento")
        verbose_name_plural = _("segmentos")

    def __str__(self) -> str:
        return self.name


class BusinessGroup(models.Model):
    """Companies controlled by the same owners, to check before negotiating (docs/domain.md#client-analysis)."""

    name = models.CharField(_("nombre"), max_length=160, unique=True)
    notes = models.TextField(_("notas"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("grupo empresarial")
        verbose_name_plural = _("grupos empresariales")

    def __str__(self) -> str:
        return self.name


class ClientKind(models.TextChoices):
    COMPANY = "company", _("Empresa")
    PERSON = "person", _("Persona física")


class ClientStatus(models.TextChoices):
    ACTIVE = "active", _("Activo")
    IN_COLLECTION = "in_collection", _("En cobranza")
    AGENCY = "agency", _("En agencia de cobranza")
    LEGAL = "legal", _("En vía judicial")
    WRITTEN_OFF = "written_off", _("Castigado")


class Client(OneQueryConstraints):
    Kind = ClientKind
    Status = ClientStatus

    legal_name = models.CharField(_("razón social"), max_length=200)
    trade_name = models.CharField(_("nombre comercial"), max_length=200, blank=True)
    tax_id = models.CharField(_("RFC / NIF"), max_length=32, blank=True)
    kind = models.CharField(_("tipo"), max_length=10, choices=ClientKind.choices, default=ClientKind.COMPANY)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="clients", verbose_name=_("segmento"))
    collector = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_clients",
        verbose_name=_("gestor asignado"),
    )
    credit_limit = models.DecimalField(_("límite de crédito"), **MONEY, default=ZERO, validators=[MinValueValidator(0)])
    payment_terms_days = models.PositiveSmallIntegerField(_("plazo de pago (días)"), default=30)
    currency = models.CharField(_("moneda"), max_length=3, default="MXN", validators=[currency_validator])
    language = models.CharField(_("idioma"), max_length=2, choices=Language.choices, default=Language.ES)
    time_zone = models.CharField(
        _("zona horaria"), max_length=64, default="America/Mexico_City", validators=[validate_time_zone]
    )
    country = models.CharField(_("país"), max_length=2, default="MX", validators=[country_validator])
    business_group = models.ForeignKey(
        BusinessGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="clients",
        verbose_name=_("grupo empresarial"),
    )
    client_since = models.DateField(_("cliente desde"), null=True, blank=True)
    status = models.CharField(_("estado"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    address = models.TextField(_("dirección postal"), blank=True)
    notes = models.TextField(_("notas"), blank=True)
    created_at = models.DateTimeField(_("creado"), default=clock.now, editable=False)
    updated_at = models.DateTimeField(_("actualizado"), default=clock.now, editable=False)

    class Meta:
        ordering = ["legal_name", "id"]
        verbose_name = _("cliente")
        verbose_name_plural = _("clientes")
        constraints = [
            models.UniqueConstraint(
                fields=["tax_id"],
                condition=~Q(tax_id=""),
                name="client_tax_id_unique",
                violation_error_message=_("Ya existe un cliente con este RFC / NIF."),
            ),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="client_credit_limit_gte_0"),
            _currency_check("client_currency_iso"),
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"), name="client_country_iso"),
            models.CheckConstraint(condition=Q(kind__in=ClientKind.values), name="client_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ClientStatus.values), name="client_status_valid"),
            models.CheckConstraint(condition=Q(language__in=Language.values), name="client_language_valid"),
        ]
        indexes = [
            # The client list's default order (managers see every client).
            models.Index(fields=["legal_name", "id"], name="client_name"),
            models.Index(fields=["collector", "legal_name"], name="client_collector_name"),
            # The call windows (country, time zone) of everybody's or a collector's clients,
            # read by skipping from one to the next (the worklist, per page).
            models.Index(fields=["country", "time_zone", "collector"], name="client_zone_collector"),
            models.Index(fields=["segment", "legal_name"], name="client_segment_name"),
            models.Index(fields=["status"], name="client_status"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.trade_name or self.legal_name


class ContactRole(models.TextChoices):
    BILLING = "billing", _("Facturación / cuentas por pagar")
    PRIMARY = "primary", _("Contacto principal")
    GUARANTOR = "guarantor", _("Aval")
    BACKUP = "backup", _("Contacto de respaldo")


class Contact(OneQueryConstraints):
    Role = ContactRole

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("cliente"))
    role = models.CharField(_("rol"), max_length=10, choices=Role.choices, default=Role.BILLING)
    name = models.CharField(_("nombre"), max_length=160)
    position = models.CharField(_("puesto"), max_length=120, blank=True)
    email = models.EmailField(_("correo electrónico"), blank=True)
    phone = models.CharField(_("teléfono"), max_length=32, blank=True)
    whatsapp = models.CharField(_("WhatsApp"), max_length=32, blank=True)
    preferred_channel = models.CharField(
        _("canal preferido"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    opt_out_email = models.BooleanField(_("no enviar correos"), default=False)
    opt_out_sms = models.BooleanField(_("no enviar SMS"), default=False)
    opt_out_whatsapp = models.BooleanField(_("no enviar WhatsApp"), default=False)
    opt_out_phone = models.BooleanField(_("no llamar"), default=False)
    opt_out_letter = models.BooleanField(_("no enviar cartas"), default=False)
    is_active = models.BooleanField(_("activo"), default=True)
    notes = models.TextField(_("notas"), blank=True)
    created_at = models.DateTimeField(_("creado"), default=clock.now, editable=False)

    class Meta:
        ordering = ["client", "role", "name"]
        verbose_name = _("contacto")
        verbose_name_plural = _("contactos")
        constraints = [
            models.CheckConstraint(condition=Q(role__in=ContactRole.values), name="contact_role_valid"),
            models.CheckConstraint(condition=Q(preferred_channel__in=Channel.values), name="contact_channel_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"

    def opted_out(self, channel: str) -> bool:
        return bool(getattr(self, f"opt_out_{channel}", False))


class InvoiceStatus(models.TextChoices):
    OPEN = "open", _("Pendiente")
    PARTIALLY_PAID = "partially_paid", _("Pago parcial")
    PAID = "paid", _("Pagada")
    DISPUTED = "disputed", _("En disputa")
    WRITTEN_OFF = "written_off", _("Castigada")
    CANCELLED = "cancelled", _("Cancelada")


class Invoice(OneQueryConstraints):
    Status = InvoiceStatus

    # Statuses derived from the payments; the others are set by a person and stick.
    PAYMENT_STATUSES = (Status.OPEN, Status.PARTIALLY_PAID, Status.PAID)
    # Statuses in which the open balance is still owed.
    COLLECTIBLE_STATUSES = (Status.OPEN, Status.PARTIALLY_PAID, Status.DISPUTED)

    number = models.CharField(_("folio"), max_length=40, unique=True)
    # No index of its own: ``invoice_client_due`` (client, due date) serves every lookup by
    # client, and each index is one more write per imported invoice.
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("cliente"), db_index=False
    )
    issue_date = models.DateField(_("fecha de emisión"))
    due_date = models.DateField(_("fecha de vencimiento"))
    currency = models.CharField(_("moneda"), max_length=3, validators=[currency_validator])
    amount = models.DecimalField(_("importe"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    amount_paid = models.DecimalField(_("pagado"), **MONEY, default=ZERO, editable=False)
    # Stored by the database from the two columns above, so it can never drift from them.
    open_balance = models.GeneratedField(
        expression=F("amount") - F("amount_paid"),
        output_field=models.DecimalField(**MONEY),
        db_persist=True,
        verbose_name=_("saldo"),
    )
    status = models.CharField(_("estado"), max_length=16, choices=Status.choices, default=Status.OPEN)
    external_ref = models.CharField(_("referencia externa"), max_length=80, blank=True)
    description = models.CharField(_("concepto"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("creada"), default=clock.now, editable=False)
    updated_at = models.DateTimeField(_("actualizada"), default=clock.now, editable=False)

    class Meta:
        ordering = ["due_date", "id"]
        verbose_name = _("factura")
        verbose_name_plural = _("facturas")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_paid__lte=F("amount")), name="invoice_paid_within_amount"
            ),
            models.CheckConstraint(condition=Q(due_date__gte=F("issue_date")), name="invoice_due_after_issue"),
            _currency_check("invoice_currency_iso"),
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            # Payment-derived statuses must agree with the money.
            models.CheckConstraint(condition=~Q(status="open") | Q(amount_paid=0), name="invoice_open_means_unpaid"),
            models.CheckConstraint(
                condition=~Q(status="partially_paid") | (Q(amount_paid__gt=0) & Q(amount_paid__lt=F("amount"))),
                name="invoice_partial_means_partial",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(amount_paid=F("amount")), name="invoice_paid_means_settled"
            ),
        ]
        indexes = [
            models.Index(fields=["client", "due_date"], name="invoice_client_due"),
            # The planner and aging read open invoices by due date.
            models.Index(
                fields=["due_date"],
                name="invoice_collectible_due",
                condition=Q(status__in=["open", "partially_paid", "disputed"]),
            ),
            # Dashboard metrics: credit sales by issue date, new delinquencies by due date
            # (paid invoices too), and invoices written off after a past date.
            # The client list's search finds a client by an invoice number typed in any case.
            models.Index(Upper("number"), name="invoice_number_upper"),
            models.Index(fields=["issue_date"], name="invoice_issue_date"),
            models.Index(fields=["due_date"], name="invoice_due_date"),
            models.Index(fields=["updated_at"], name="invoice_written_off_at", condition=Q(status="written_off")),
            # The worklist and the client list: a client's collectible invoices by due date,
            # with the currency and balance they add up (index-only per client).
            models.Index(
                fields=["client", "due_date"],
                # Status and id too: the amount at risk of a client (not disputed, not on hold,
                # not in an open commitment) is then read from this index alone; and the issue
                # date: so are the receivables at a date (cobranza.dashboard.metrics._cube_sql).
                include=["currency", "open_balance", "status", "id", "issue_date"],
                name="invoice_client_collectible",
                condition=Q(status__in=["open", "partially_paid", "disputed"]) & Q(open_balance__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def days_overdue(self, today=None) -> int:
        return days_late(self.due_date, today or clock.localdate())


class PaymentMethod(models.TextChoices):
    TRANSFER = "transfer", _("Transferencia")
    CASH = "cash", _("Efectivo")
    CARD = "card", _("Tarjeta")
    CHECK = "check", _("Cheque")
    DIRECT_DEBIT = "direct_debit", _("Domiciliación")
    OTHER = "other", _("Otro")
    # Not money received: they settle part of an invoice (collections metrics leave them out).
    CREDIT_NOTE = "credit_note", _("Nota de crédito")
    DISCOUNT = "discount", _("Descuento negociado")


NON_CASH_METHODS = (PaymentMethod.CREDIT_NOTE, PaymentMethod.DISCOUNT)


class Payment(OneQueryConstraints):
    Method = PaymentMethod

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="payments", verbose_name=_("cliente"))
    received_on = models.DateField(_("fecha de pago"))
    amount = models.DecimalField(_("importe"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(_("moneda"), max_length=3, validators=[currency_validator])
    method = models.CharField(_("forma de pago"), max_length=16, choices=Method.choices, default=Method.TRANSFER)
    # Bank or provider reference: unique when given, so a file or webhook delivered twice
    # records one payment.
    reference = models.CharField(_("referencia"), max_length=80, blank=True)
    # What is not applied to invoices stays here as client credit until it is applied.
    unallocated = models.DecimalField(_("saldo a favor"), **MONEY, default=ZERO, editable=False)
    notes = models.TextField(_("notas"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registrado por"),
    )
    created_at = models.DateTimeField(_("registrado"), default=clock.now, editable=False)
    invoices = models.ManyToManyField(Invoice, through="PaymentAllocation", related_name="payments")

    class Meta:
        ordering = ["-received_on", "-id"]
        verbose_name = _("pago")
        verbose_name_plural = _("pagos")
        constraints = [
            models.UniqueConstraint(
                fields=["reference"],
                condition=~Q(reference=""),
                name="payment_reference_unique",
                violation_error_message=_("Ya existe un pago con esta referencia."),
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(unallocated__gte=0) & Q(unallocated__lte=F("amount")), name="payment_unallocated_within"
            ),
            _currency_check("payment_currency_iso"),
            models.CheckConstraint(condition=Q(method__in=PaymentMethod.values), name="payment_method_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-received_on"], name="payment_client_date"),
            # Period reports (cash collected, recovery rate) scan payments by date.
            models.Index(fields=["received_on"], name="payment_received_on"),
            models.Index(fields=["client"], name="payment_client_credit", condition=Q(unallocated__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.received_on} {self.amount} {self.currency}"


class PaymentAllocation(OneQueryConstraints):
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(_("importe aplicado"), **MONEY)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("aplicación de pago")
        verbose_name_plural = _("aplicaciones de pago")
        constraints = [
            models.UniqueConstraint(fields=["payment", "invoice"], name="allocation_payment_invoice_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} → {self.invoice_id}: {self.amount}"


class InteractionKind(models.TextChoices):
    CALL = "call", _("Llamada")
    EMAIL = "email", _("Correo electrónico")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    LETTER = "letter", _("Carta")
    VISIT = "visit", _("Visita")
    NOTE = "note", _("Nota")
    SYSTEM = "system", _("Evento del sistema")


class InteractionDirection(models.TextChoices):
    OUTBOUND = "outbound", _("Saliente")
    INBOUND = "inbound", _("Entrante")
    INTERNAL = "internal", _("Interna")


class InteractionOutcome(models.TextChoices):
    NONE = "", _("—")
    REACHED = "reached", _("Contactado")
    NO_ANSWER = "no_answer", _("No contesta")
    LEFT_MESSAGE = "left_message", _("Se dejó recado")
    PROMISE = "promise", _("Promesa de pago")
    PLAN_REQUEST = "plan_request", _("Solicita plan de pagos")
    DISPUTE = "dispute", _("Reclamación / disputa")
    REFUSED = "refused", _("Se niega a pagar")
    WRONG_CONTACT = "wrong_contact", _("Contacto equivocado")
    PAID = "paid", _("Pago recibido")
    SENT = "sent", _("Enviado")
    FAILED = "failed", _("Envío fallido")


class NonPaymentReason(models.TextChoices):
    """Why the client has not paid, as heard in the contact (docs/domain.md#client-analysis)."""

    NONE = "", _("—")
    FORGOT = "forgot", _("Olvido")
    NOT_RECEIVED = "not_received", _("No recibió la factura")
    CASH_FLOW = "cash_flow", _("Falta de liquidez")
    WAITING_CUSTOMERS = "waiting", _("Espera cobrar a sus clientes")
    COMPLAINT = "complaint", _("Inconformidad con el producto o servicio")
    PAYMENT_PROCESS = "process", _("Trámite interno de pago (aprobaciones, fechas de pago)")
    NO_WILL = "no_will", _("No tiene intención de pagar")
    OTHER = "other", _("Otro motivo")


class Interaction(OneQueryConstraints):
    """One entry of the client's timeline. Append-only: a correction is a new entry."""

    Kind = InteractionKind
    Direction = InteractionDirection
    Outcome = InteractionOutcome

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="interactions", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=10, choices=Kind.choices)
    direction = models.CharField(_("dirección"), max_length=10, choices=Direction.choices, default=Direction.OUTBOUND)
    outcome = models.CharField(_("resultado"), max_length=16, choices=Outcome.choices, blank=True, default="")
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("contacto")
    )
    summary = models.CharField(_("resumen"), max_length=255)
    # What the system wrote, as a code to render in the reader's language (accounts.texts).
    summary_code, summary_params = texts.code_fields("summary")
    summary_text = texts.Shown("summary")
    body = models.TextField(_("detalle"), blank=True)
    # Null author means the system (planner, workers, imports) wrote it.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("autor"),
    )
    occurred_at = models.DateTimeField(_("fecha y hora"), default=clock.now)
    nonpayment_reason = models.CharField(
        _("motivo del impago"),
        max_length=12,
        choices=NonPaymentReason.choices,
        blank=True,
        default="",
        db_default="",  # rows inserted by SQL (bulk loads) need no value
    )
    next_action_on = models.DateField(_("próxima acción"), null=True, blank=True)
    invoices = models.ManyToManyField(Invoice, blank=True, related_name="interactions", verbose_name=_("facturas"))
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("corrige a"),
    )
    created_at = models.DateTimeField(_("registrada"), default=clock.now, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("interacción")
        verbose_name_plural = _("interacciones")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=InteractionKind.values), name="interaction_kind_valid"),
            models.CheckConstraint(
                condition=Q(nonpayment_reason__in=NonPaymentReason.values), name="interaction_nonpayment_reason_valid"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=InteractionDirection.values), name="interaction_direction_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=InteractionOutcome.values), name="interaction_outcome_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["client", "-occurred_at"], name="interaction_client_time"),
            # Collector performance: contacts made by a person in a period.
            models.Index(fields=["author", "occurred_at"], name="interaction_author_time"),
            models.Index(
                fields=["next_action_on"], name="interaction_next_action", condition=Q(next_action_on__isnull=False)
            ),
            # Is a next action followed up? The client's later person-made entry (worklist, calendar).
            models.Index(
                fields=["client", "occurred_at", "id"], name="interaction_client_contact", condition=~Q(kind="system")
            ),
            # The clients talked to on a day (the worklist leaves them for tomorrow).
            models.Index(fields=["occurred_at"], name="interaction_contact_time", condition=~Q(kind="system")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"

    def save(self, *args, **kwargs):
        # The database refuses UPDATE too (a trigger, accounts migration 0002); this gives a
        # clear error earlier.
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("El historial es de solo anexado: registre una corrección como nueva entrada."))
        super().save(*args, **kwargs)


class UserPreference(OneQueryConstraints):
    """A staff member's own settings: the number format they read (docs/domain.md#number-formats);
    empty = the business's. Kept in the session once read (one query per login)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    number_format = models.CharField(
        _("formato de números"),
        max_length=5,
        blank=True,
        choices=numbers.CHOICES,
        help_text=_("Vacío: el de la empresa."),
    )

    class Meta:
        verbose_name = _("preferencias del usuario")
        verbose_name_plural = _("preferencias de los usuarios")
        constraints = [
            models.CheckConstraint(
                condition=Q(number_format__in=["", *numbers.RULES]), name="user_preference_number_format_known"
            ),
        ]

    def __str__(self) -> str:
        return str(self.user)
