"""Collections: dunning policies (ladders), message templates, notices, contact rules, tasks.

A segment's policy is an ordered ladder of steps, each an offset in days from the due date.
The planner records one Notice per client × step × day with the invoices at that step
(NoticeItem: each invoice reaches each step at most once, enforced by a unique constraint);
dispatch claims a notice, re-checks it and sends it through a channel backend.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY, ZERO, Client, Contact, Invoice, Language, Segment


class StepChannel(models.TextChoices):
    EMAIL = "email", _("Correo electrónico")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    LETTER = "letter", _("Carta (PDF)")
    CALL = "call", _("Llamada del gestor")
    REVIEW = "review", _("Revisión del gerente")
    AGENCY = "agency", _("Envío a agencia de cobranza")
    LEGAL = "legal", _("Envío a vía judicial")


# Channels that deliver a rendered message to the debtor; the others create tasks or hand-offs.
MESSAGE_CHANNELS = (StepChannel.EMAIL, StepChannel.SMS, StepChannel.WHATSAPP, StepChannel.LETTER)
TASK_CHANNELS = (StepChannel.CALL, StepChannel.REVIEW, StepChannel.AGENCY, StepChannel.LEGAL)


class Tone(models.TextChoices):
    COURTEOUS = "courteous", _("Cortés")
    FIRM = "firm", _("Firme")
    FINAL = "final", _("Último aviso")


class MessageTemplate(models.Model):
    """A message for one channel, with its text per language (MessageTemplateText)."""

    code = models.SlugField(_("código"), max_length=60, unique=True)
    name = models.CharField(_("nombre"), max_length=120)
    channel = models.CharField(_("canal"), max_length=10, choices=[(c.value, c.label) for c in MESSAGE_CHANNELS])
    tone = models.CharField(_("tono"), max_length=10, choices=Tone.choices, default=Tone.COURTEOUS)
    is_active = models.BooleanField(_("activa"), default=True)
    updated_at = models.DateTimeField(_("actualizada"), default=timezone.now)

    class Meta:
        ordering = ["channel", "name"]
        verbose_name = _("plantilla de mensaje")
        verbose_name_plural = _("plantillas de mensaje")
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=[c.value for c in MESSAGE_CHANNELS]), name="template_channel_is_message"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MessageTemplateText(models.Model):
    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("idioma"), max_length=2, choices=Language.choices)
    subject = models.CharField(_("asunto"), max_length=200, blank=True)
    body = models.TextField(_("texto"))

    class Meta:
        ordering = ["template", "language"]
        verbose_name = _("texto de plantilla")
        verbose_name_plural = _("textos de plantilla")
        constraints = [
            models.UniqueConstraint(fields=["template", "language"], name="template_text_one_per_language"),
        ]

    def __str__(self) -> str:
        return f"{self.template} ({self.language})"


class Policy(models.Model):
    """A dunning ladder. Each segment has one; a client may have its own."""

    name = models.CharField(_("nombre"), max_length=120, unique=True)
    description = models.TextField(_("descripción"), blank=True)
    segment = models.OneToOneField(
        Segment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="policy",
        verbose_name=_("segmento"),
    )
    # Balances below this are not worth a reminder (rounding leftovers, small differences).
    tolerance = models.DecimalField(
        _("saldo mínimo para actuar"), **MONEY, default=Decimal("1.00"), validators=[MinValueValidator(0)]
    )
    is_active = models.BooleanField(_("activa"), default=True)
    updated_at = models.DateTimeField(_("actualizada"), default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("política de cobranza")
        verbose_name_plural = _("políticas de cobranza")
        constraints = [
            models.CheckConstraint(condition=Q(tolerance__gte=0), name="policy_tolerance_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name


class PolicyStep(models.Model):
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="steps", verbose_name=_("política"))
    position = models.PositiveSmallIntegerField(_("orden"))
    name = models.CharField(_("nombre"), max_length=120)
    # Negative: days before the due date (the pre-due reminder); 0: on the due date.
    offset_days = models.SmallIntegerField(_("días respecto al vencimiento"))
    channel = models.CharField(_("canal"), max_length=10, choices=StepChannel.choices)
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="steps",
        verbose_name=_("plantilla"),
    )
    tone = models.CharField(_("tono"), max_length=10, choices=Tone.choices, default=Tone.COURTEOUS)
    min_overdue_amount = models.DecimalField(
        _("importe vencido mínimo"), **MONEY, default=ZERO, validators=[MinValueValidator(0)]
    )
    requires_approval = models.BooleanField(_("requiere aprobación"), default=False)
    is_active = models.BooleanField(_("activo"), default=True)

    class Meta:
        ordering = ["policy", "position"]
        verbose_name = _("paso de la política")
        verbose_name_plural = _("pasos de la política")
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="step_position_unique"),
            models.UniqueConstraint(fields=["policy", "offset_days", "channel"], name="step_offset_channel_unique"),
            models.CheckConstraint(condition=Q(channel__in=StepChannel.values), name="step_channel_valid"),
            models.CheckConstraint(
                condition=~Q(channel__in=[c.value for c in MESSAGE_CHANNELS]) | Q(template__isnull=False),
                name="step_message_needs_template",
            ),
            models.CheckConstraint(condition=Q(min_overdue_amount__gte=0), name="step_min_overdue_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} · {self.position}. {self.name}"


class ClientDunning(models.Model):
    """Per-client overrides: an own policy, or a pause with its reason."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="dunning")
    policy = models.ForeignKey(
        Policy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("política propia")
    )
    paused_until = models.DateField(_("sin recordatorios hasta"), null=True, blank=True)
    pause_reason = models.CharField(_("motivo de la pausa"), max_length=255, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        verbose_name = _("ajuste de cobranza del cliente")
        verbose_name_plural = _("ajustes de cobranza por cliente")
        constraints = [
            models.CheckConstraint(
                condition=Q(paused_until__isnull=True) | ~Q(pause_reason=""), name="dunning_pause_needs_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.policy or '—'} / {self.paused_until or '—'}"


class InvoiceHold(models.Model):
    """A single invoice kept out of the ladder until a date (or until released)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="hold")
    until = models.DateField(_("retenida hasta"), null=True, blank=True)
    reason = models.CharField(_("motivo"), max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        verbose_name = _("factura retenida")
        verbose_name_plural = _("facturas retenidas")
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="hold_needs_reason")]

    def __str__(self) -> str:
        return f"{self.invoice} ({self.reason})"


class NoticeStatus(models.TextChoices):
    PLANNED = "planned", _("Programado")
    AWAITING_APPROVAL = "awaiting_approval", _("Pendiente de aprobación")
    SENDING = "sending", _("Enviando")
    SENT = "sent", _("Enviado")
    SKIPPED = "skipped", _("Omitido")
    FAILED = "failed", _("Fallido")
    CANCELLED = "cancelled", _("Cancelado")


class Notice(models.Model):
    """One message (or task) for one client at one ladder step, listing every invoice of
    that client at that step. Created by the planner; sent at most once by dispatch."""

    Status = NoticeStatus
    OPEN_STATUSES = (NoticeStatus.PLANNED, NoticeStatus.AWAITING_APPROVAL, NoticeStatus.SENDING)

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="notices", verbose_name=_("cliente"))
    step = models.ForeignKey(PolicyStep, on_delete=models.PROTECT, related_name="notices", verbose_name=_("paso"))
    channel = models.CharField(_("canal"), max_length=10, choices=StepChannel.choices)
    # The day the planner found the step due; with client and step, the notice's identity.
    planned_for = models.DateField(_("planeado para"))
    # Not before this moment: moved forward when contact rules defer the send.
    scheduled_at = models.DateTimeField(_("enviar a partir de"))
    status = models.CharField(_("estado"), max_length=20, choices=NoticeStatus.choices, default=NoticeStatus.PLANNED)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("contacto")
    )
    recipient = models.CharField(_("destinatario"), max_length=254, blank=True)
    language = models.CharField(_("idioma"), max_length=2, choices=Language.choices, default=Language.ES)
    subject = models.CharField(_("asunto"), max_length=255, blank=True)
    body = models.TextField(_("contenido"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("intentos"), default=0)
    deferrals = models.PositiveSmallIntegerField(_("aplazamientos"), default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("enviado"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    provider_ref = models.CharField(_("referencia del proveedor"), max_length=255, blank=True)
    # Why it was deferred, skipped or failed (the latest reason; the timeline keeps them all).
    reason = models.CharField(_("motivo"), max_length=255, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Letters: when a person printed the PDF for mailing (null: still to print).
    printed_at = models.DateTimeField(_("impresa"), null=True, blank=True)
    printed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("impresa por"),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    invoices = models.ManyToManyField(Invoice, through="NoticeItem", related_name="notices")

    class Meta:
        ordering = ["-planned_for", "client_id"]
        verbose_name = _("aviso")
        verbose_name_plural = _("avisos")
        constraints = [
            models.UniqueConstraint(fields=["client", "step", "planned_for"], name="notice_once_per_client_step_day"),
            models.CheckConstraint(condition=Q(status__in=NoticeStatus.values), name="notice_status_valid"),
            models.CheckConstraint(condition=~Q(status="sent") | Q(sent_at__isnull=False), name="notice_sent_has_time"),
        ]
        indexes = [
            # Dispatch looks for due planned notices and for expired leases.
            models.Index(fields=["scheduled_at"], name="notice_due", condition=Q(status__in=["planned", "sending"])),
            models.Index(fields=["client", "-planned_for"], name="notice_client_day"),
        ]

    def __str__(self) -> str:
        return f"{self.client} · {self.step} · {self.planned_for}"


class NoticeItem(models.Model):
    """An invoice listed on a notice. Each invoice reaches each step once, ever."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="items")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="notice_items")
    step = models.ForeignKey(PolicyStep, on_delete=models.PROTECT, related_name="+")
    open_balance = models.DecimalField(**MONEY)
    days_overdue = models.IntegerField()

    class Meta:
        verbose_name = _("factura del aviso")
        verbose_name_plural = _("facturas del aviso")
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="notice_item_once_per_invoice_step"),
        ]

    def __str__(self) -> str:
        return f"{self.notice_id}: {self.invoice_id}"


class ContactRules(models.Model):
    """When and how often a debtor may be contacted: a preset per country, editable."""

    country = models.CharField(_("país"), max_length=2, unique=True, help_text=_("ISO 3166, p. ej. MX, ES, US."))
    name = models.CharField(_("nombre"), max_length=120)
    start_time = models.TimeField(_("desde"))
    end_time = models.TimeField(_("hasta"))
    # ISO weekdays allowed (1 = Monday … 7 = Sunday), e.g. "1,2,3,4,5".
    weekdays = models.CharField(_("días permitidos"), max_length=13, default="1,2,3,4,5,6,7")
    max_per_channel_7d = models.PositiveSmallIntegerField(_("máximo de contactos por canal en 7 días"), default=3)
    max_calls_7d = models.PositiveSmallIntegerField(_("máximo de llamadas en 7 días"), null=True, blank=True)
    skip_holidays = models.BooleanField(_("no contactar en días festivos"), default=True)
    notes = models.TextField(_("fundamento"), blank=True)

    class Meta:
        ordering = ["country"]
        verbose_name = _("reglas de contacto")
        verbose_name_plural = _("reglas de contacto")
        constraints = [
            models.CheckConstraint(condition=Q(start_time__lt=models.F("end_time")), name="rules_window_not_empty"),
            models.CheckConstraint(condition=Q(weekdays__regex=r"^[1-7](,[1-7])*$"), name="rules_weekdays_format"),
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    country = models.CharField(_("país"), max_length=2)
    date = models.DateField(_("fecha"))
    name = models.CharField(_("nombre"), max_length=120)

    class Meta:
        ordering = ["date"]
        verbose_name = _("día festivo")
        verbose_name_plural = _("días festivos")
        constraints = [models.UniqueConstraint(fields=["country", "date"], name="holiday_once_per_country_day")]

    def __str__(self) -> str:
        return f"{self.date} {self.name} ({self.country})"


class TaskKind(models.TextChoices):
    CALL = "call", _("Llamar al cliente")
    REVIEW = "review", _("Revisión del gerente")
    AGENCY = "agency", _("Enviar a agencia de cobranza")
    LEGAL = "legal", _("Enviar a vía judicial")
    FIND_CONTACT = "find_contact", _("Conseguir un contacto")
    ESCALATION = "escalation", _("Escalamiento: la escalera terminó sin pago")
    APPROVAL = "approval", _("Aprobar un aviso")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Pendiente")
    DONE = "done", _("Hecha")
    CANCELLED = "cancelled", _("Cancelada")


class CollectorTask(models.Model):
    """Work for a person: calls and reviews from the ladder, contacts to find, escalations."""

    Kind = TaskKind
    Status = TaskStatus

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=14, choices=TaskKind.choices)
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks")
    title = models.CharField(_("tarea"), max_length=255)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="collection_tasks",
        verbose_name=_("asignada a"),
    )
    due_on = models.DateField(_("para el"))
    status = models.CharField(_("estado"), max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["due_on", "id"]
        verbose_name = _("tarea de cobranza")
        verbose_name_plural = _("tareas de cobranza")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="task_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=TaskStatus.values), name="task_status_valid"),
            # A notice creates each kind of task once, however often it is processed.
            models.UniqueConstraint(
                fields=["notice", "kind"], condition=Q(notice__isnull=False), name="task_once_per_notice_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["assigned_to", "due_on"], name="task_open_by_user", condition=Q(status="open")),
        ]

    def __str__(self) -> str:
        return self.title
