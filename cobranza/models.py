"""Collections: dunning policies (ladders), message templates, notices, contact rules, tasks.

A segment's policy is an ordered ladder of steps, each an offset in days from the due date.
The planner records one Notice per client × step × day with the invoices at that step
(NoticeItem: each invoice reaches each step at most once, enforced by a unique constraint);
dispatch claims a notice, re-checks it and sends it through a channel backend.
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts import clock, numbers, texts
from accounts.models import MONEY, ZERO, Client, Contact, Interaction, Invoice, Language, Segment
from accounts.validation import OneQueryConstraints


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
# Escalation steps: the final letter and the hand-offs. They keep their own minimum spacing per
# client (Policy.min_days_between_escalations, docs/domain.md#pacing).
ESCALATION_CHANNELS = (StepChannel.LETTER, StepChannel.AGENCY, StepChannel.LEGAL)


class Tone(models.TextChoices):
    COURTEOUS = "courteous", _("Cortés")
    FIRM = "firm", _("Firme")
    FINAL = "final", _("Último aviso")


class MessageTemplate(OneQueryConstraints):
    """A message for one channel, with its text per language (MessageTemplateText)."""

    code = models.SlugField(_("código"), max_length=60, unique=True)
    name = models.CharField(_("nombre"), max_length=120)
    channel = models.CharField(_("canal"), max_length=10, choices=[(c.value, c.label) for c in MESSAGE_CHANNELS])
    tone = models.CharField(_("tono"), max_length=10, choices=Tone.choices, default=Tone.COURTEOUS)
    is_active = models.BooleanField(_("activa"), default=True)
    updated_at = models.DateTimeField(_("actualizada"), default=clock.now)

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


class Profile(models.TextChoices):
    """The five kinds of late payer, plus the good payer (docs/domain.md#late-payers)."""

    GOOD = "good", _("Buen pagador")
    CASUAL = "casual", _("Atraso casual")
    INTENTIONAL = "intentional", _("Moroso con intención")
    NEGLIGENT = "negligent", _("Negligente")
    CIRCUMSTANTIAL = "circumstantial", _("Moroso por circunstancias")
    CHRONIC = "chronic", _("Crónico")
    NEW = "new", _("Sin historial suficiente")


# Defaults of a policy's portal limits (docs/domain.md#portal-limits).
PORTAL_PROMISE_MAX_DAYS = 30
PORTAL_PROMISE_MIN_SHARE = Decimal("25.00")
PORTAL_PLAN_MAX_INSTALLMENTS = 6


class Policy(OneQueryConstraints):
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
    # Optional: the ladder for clients of this delinquency profile (it wins over the segment's;
    # a client's own policy wins over both).
    # db_default: reference-data migrations written before this field insert policies too.
    profile = models.CharField(
        _("perfil de morosidad"), max_length=14, choices=Profile.choices, blank=True, default="", db_default=""
    )
    # Pacing (docs/domain.md#pacing): days between two ladder steps for one client, counted on
    # the client's local days; 1, the floor, is at most one a day. db_default: reference-data
    # migrations written before these fields insert policies too.
    min_days_between_contacts = models.PositiveSmallIntegerField(
        _("días mínimos entre contactos"), default=1, db_default=1, validators=[MinValueValidator(1)]
    )
    # Between two escalation steps (final letter, agency, legal) for one client.
    min_days_between_escalations = models.PositiveSmallIntegerField(
        _("días mínimos entre escalamientos"), default=7, db_default=7, validators=[MinValueValidator(1)]
    )
    updated_at = models.DateTimeField(_("actualizada"), default=clock.now)
    # What the debtor may agree to alone on the self-service page (docs/domain.md#portal-limits):
    # inside these limits a promise or plan is accepted at once, outside it waits for a
    # collector. Empty: no limit on that point. db_default: reference-data migrations written
    # before these fields insert policies too (they get the defaults, not "no limit").
    portal_promise_max_days = models.PositiveSmallIntegerField(
        _("plazo máximo de una promesa en el portal (días)"),
        null=True,
        blank=True,
        default=PORTAL_PROMISE_MAX_DAYS,
        db_default=PORTAL_PROMISE_MAX_DAYS,
        validators=[MaxValueValidator(3660)],
    )
    portal_promise_min_share = models.DecimalField(
        _("parte mínima del vencido que cubre una promesa (%)"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        default=PORTAL_PROMISE_MIN_SHARE,
        db_default=PORTAL_PROMISE_MIN_SHARE,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    portal_plan_max_installments = models.PositiveSmallIntegerField(
        _("cuotas máximas de un plan pedido en el portal"),
        null=True,
        blank=True,
        default=PORTAL_PLAN_MAX_INSTALLMENTS,
        db_default=PORTAL_PLAN_MAX_INSTALLMENTS,
        validators=[MinValueValidator(2), MaxValueValidator(120)],
    )
    # Days a debtor's reply pauses the ladder (docs/domain.md#replies); empty: the global
    # default, settings.REPLY_PAUSE_DAYS; 0: a reply does not pause.
    reply_pause_days = models.PositiveSmallIntegerField(
        _("días de pausa tras una respuesta del cliente"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(90)],
        help_text=_("Vacío: el valor general. 0: una respuesta no pausa los recordatorios."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("política de cobranza")
        verbose_name_plural = _("políticas de cobranza")
        constraints = [
            models.CheckConstraint(condition=Q(tolerance__gte=0), name="policy_tolerance_gte_0"),
            models.CheckConstraint(condition=Q(min_days_between_contacts__gte=1), name="policy_contact_days_gte_1"),
            models.CheckConstraint(
                condition=Q(min_days_between_escalations__gte=1), name="policy_escalation_days_gte_1"
            ),
            models.UniqueConstraint(fields=["profile"], condition=~Q(profile=""), name="policy_one_per_profile"),
            models.CheckConstraint(
                condition=Q(portal_promise_min_share__isnull=True)
                | Q(portal_promise_min_share__gte=0, portal_promise_min_share__lte=100),
                name="policy_portal_share_0_100",
            ),
            models.CheckConstraint(
                condition=Q(portal_plan_max_installments__isnull=True) | Q(portal_plan_max_installments__gte=2),
                name="policy_portal_installments_gte_2",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PolicyStep(OneQueryConstraints):
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
    # A step added, re-activated or moved to other days applies only to invoices whose day for
    # it (due date + offset) is on or after this date: invoices already past it are not swept
    # in, unless an administrator confirms a catch-up, which clears it (docs/domain.md#pacing).
    applies_from = models.DateField(_("aplica desde"), null=True, blank=True)
    catch_up_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("puesta al día confirmada por"),
    )
    catch_up_confirmed_at = models.DateTimeField(_("puesta al día confirmada"), null=True, blank=True)

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


class ClientDunning(OneQueryConstraints):
    """Per-client overrides: an own policy, or a pause with its reason."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="dunning")
    policy = models.ForeignKey(
        Policy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("política propia")
    )
    paused_until = models.DateField(_("sin recordatorios hasta"), null=True, blank=True)
    pause_reason = models.CharField(_("motivo de la pausa"), max_length=255, blank=True)
    updated_at = models.DateTimeField(default=clock.now)
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


class InvoiceHold(OneQueryConstraints):
    """A single invoice kept out of the ladder until a date (or until released)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="hold")
    until = models.DateField(_("retenida hasta"), null=True, blank=True)
    reason = models.CharField(_("motivo"), max_length=255)
    created_at = models.DateTimeField(default=clock.now)
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
    # A firmer step went out for these invoices on the same run: this one never goes.
    SUPERSEDED = "superseded", _("Reemplazado")


class Notice(OneQueryConstraints):
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
    # The reason as a code to render in the reader's language (accounts.texts).
    reason_code, reason_params = texts.code_fields("reason")
    reason_text = texts.Shown("reason")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A superseded notice: the firmer notice planned instead of it.
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="supersedes",
        verbose_name=_("reemplazado por"),
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
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    invoices = models.ManyToManyField(Invoice, through="NoticeItem", related_name="notices")

    class Meta:
        ordering = ["-planned_for", "client_id"]
        verbose_name = _("aviso")
        verbose_name_plural = _("avisos")
        constraints = [
            models.UniqueConstraint(fields=["client", "step", "planned_for"], name="notice_once_per_client_step_day"),
            models.CheckConstraint(condition=Q(status__in=NoticeStatus.values), name="notice_status_valid"),
            models.CheckConstraint(condition=~Q(status="sent") | Q(sent_at__isnull=False), name="notice_sent_has_time"),
            models.CheckConstraint(
                condition=Q(status="superseded") | Q(superseded_by__isnull=True), name="notice_superseded_by_only_if"
            ),
        ]
        indexes = [
            # Dispatch looks for due planned notices and for expired leases.
            models.Index(fields=["scheduled_at"], name="notice_due", condition=Q(status__in=["planned", "sending"])),
            models.Index(fields=["client", "-planned_for"], name="notice_client_day"),
            # Dunning effectiveness and "what goes out" read notices by planned day.
            models.Index(fields=["planned_for"], name="notice_planned_for"),
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


class ContactRules(OneQueryConstraints):
    """When and how often a debtor may be contacted: a preset per country, editable."""

    country = models.CharField(_("país"), max_length=2, unique=True, help_text=_("ISO 3166, p. ej. MX, ES, US."))
    name = models.CharField(_("nombre"), max_length=120)
    start_time = models.TimeField(_("desde"))
    end_time = models.TimeField(_("hasta"))
    # ISO weekdays allowed (1 = Monday … 7 = Sunday), e.g. "1,2,3,4,5".
    weekdays = models.CharField(_("días permitidos"), max_length=13, default="1,2,3,4,5,6,7")
    saturday_start_time = models.TimeField(
        _("sábado desde"), null=True, blank=True, help_text=_("Solo si el sábado tiene otro horario.")
    )
    saturday_end_time = models.TimeField(_("sábado hasta"), null=True, blank=True)
    max_per_channel_7d = models.PositiveSmallIntegerField(_("máximo de contactos por canal en 7 días"), default=3)
    max_calls_7d = models.PositiveSmallIntegerField(_("máximo de llamadas en 7 días"), null=True, blank=True)
    max_contacts_7d = models.PositiveSmallIntegerField(
        _("máximo de contactos en 7 días (todos los canales)"), null=True, blank=True
    )
    skip_holidays = models.BooleanField(_("no contactar en días festivos"), default=True)
    spread_sends = models.BooleanField(
        _("repartir los envíos en el horario"),
        default=True,
        # In the database too: the presets' data migrations (re-run after a test flush) insert
        # rows through historical models that predate this column.
        db_default=True,
        help_text=_(
            "Cada cliente recibe los mensajes automáticos a su propia hora dentro del horario, no todos al abrirlo."
        ),
    )
    notes = models.TextField(_("fundamento"), blank=True)

    class Meta:
        ordering = ["country"]
        verbose_name = _("reglas de contacto")
        verbose_name_plural = _("reglas de contacto")
        constraints = [
            models.CheckConstraint(condition=Q(start_time__lt=models.F("end_time")), name="rules_window_not_empty"),
            models.CheckConstraint(condition=Q(weekdays__regex=r"^[1-7](,[1-7])*$"), name="rules_weekdays_format"),
            models.CheckConstraint(
                condition=Q(saturday_start_time__isnull=True, saturday_end_time__isnull=True)
                | Q(saturday_start_time__lt=models.F("saturday_end_time")),
                name="rules_saturday_window",
            ),
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
    BROKEN_PROMISE = "broken_promise", _("Promesa incumplida")
    PLAN_MISSED = "plan_missed", _("Cuota de un plan incumplida")
    DISPUTE = "dispute", _("Resolver una disputa")
    DISCOUNT = "discount", _("Aprobar un descuento")
    FOLLOW_UP = "follow_up", _("Seguimiento acordado")
    GOOD_PAYER_LOST = "good_payer", _("Perdió la condición de buen pagador")
    PORTAL_PROPOSAL = "portal_request", _("Aprobar una propuesta del portal")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Pendiente")
    DONE = "done", _("Hecha")
    CANCELLED = "cancelled", _("Cancelada")


class CollectorTask(OneQueryConstraints):
    """Work for a person: calls and reviews from the ladder, contacts to find, escalations."""

    Kind = TaskKind
    Status = TaskStatus

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=14, choices=TaskKind.choices)
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks")
    commitment = models.ForeignKey("Commitment", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks")
    dispute = models.ForeignKey("Dispute", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks")
    title = models.CharField(_("tarea"), max_length=255)
    # The title as a code to render in the reader's language (accounts.texts).
    title_code, title_params = texts.code_fields("title")
    title_text = texts.Shown("title")
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
    created_at = models.DateTimeField(default=clock.now)
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
            # A broken promise or a missed installment opens one task, however often it is judged.
            models.UniqueConstraint(
                fields=["commitment", "kind", "due_on"],
                condition=Q(commitment__isnull=False),
                name="task_once_per_commitment_kind_day",
            ),
        ]
        indexes = [
            models.Index(fields=["assigned_to", "due_on"], name="task_open_by_user", condition=Q(status="open")),
            # The clients attended today (the worklist leaves them for tomorrow).
            models.Index(fields=["completed_at"], name="task_done_time", condition=Q(status="done")),
        ]

    def __str__(self) -> str:
        return self.title


# --- The collector's workspace: commitments, disputes, discounts, fees, profiles, hand-offs -------


class CommitmentKind(models.TextChoices):
    PROMISE = "promise", _("Promesa de pago")
    PLAN = "plan", _("Plan de pagos")
    EXTENSION = "extension", _("Prórroga")


class CommitmentStatus(models.TextChoices):
    OPEN = "open", _("Vigente")
    KEPT = "kept", _("Cumplida")
    PARTIAL = "partial", _("Cumplida en parte")
    BROKEN = "broken", _("Incumplida")
    CANCELLED = "cancelled", _("Cancelada")


class Commitment(OneQueryConstraints):
    """What the client agreed to pay, and when: a promise to pay (one or several dates), a
    payment plan (*fraccionamiento*: installments with rules for a missed one) or a term
    extension (one new date). While it is open and in good standing, reminders pause for its
    invoices; each installment is judged the day after its date (plus the grace days) against
    the payments applied to those invoices since the commitment was made."""

    Kind = CommitmentKind
    Status = CommitmentStatus

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="commitments", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=10, choices=CommitmentKind.choices)
    status = models.CharField(
        _("estado"), max_length=10, choices=CommitmentStatus.choices, default=CommitmentStatus.OPEN
    )
    currency = models.CharField(_("moneda"), max_length=3)
    total = models.DecimalField(_("importe comprometido"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    # Payments applied to the invoices on or after this day count towards the commitment.
    made_on = models.DateField(_("acordada el"))
    invoices = models.ManyToManyField(Invoice, related_name="commitments", verbose_name=_("facturas"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("acordada con")
    )
    # Plan rules: days of tolerance after each date, and missed installments that end the plan.
    grace_days = models.PositiveSmallIntegerField(_("días de tolerancia"), default=0)
    missed_allowed = models.PositiveSmallIntegerField(_("cuotas incumplidas toleradas"), default=0)
    missed_count = models.PositiveSmallIntegerField(_("cuotas incumplidas"), default=0)
    paid_amount = models.DecimalField(_("pagado a la fecha"), **MONEY, default=ZERO)
    notes = models.TextField(_("notas"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("registrada por"),
    )
    created_at = models.DateTimeField(default=clock.now)
    resolved_on = models.DateField(_("resuelta el"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-made_on", "-id"]
        verbose_name = _("compromiso de pago")
        verbose_name_plural = _("compromisos de pago")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=CommitmentKind.values), name="commitment_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=CommitmentStatus.values), name="commitment_status_valid"),
            models.CheckConstraint(condition=Q(total__gt=0), name="commitment_total_gt_0"),
            models.CheckConstraint(
                condition=Q(status="open") | Q(resolved_on__isnull=False), name="commitment_resolved_has_date"
            ),
        ]
        indexes = [
            models.Index(fields=["client"], name="commitment_open", condition=Q(status="open")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.client} · {self.total} {self.currency}"


class InstallmentStatus(models.TextChoices):
    PENDING = "pending", _("Pendiente")
    KEPT = "kept", _("Pagada")
    PARTIAL = "partial", _("Pagada en parte")
    MISSED = "missed", _("Incumplida")
    CANCELLED = "cancelled", _("Cancelada")


class Installment(OneQueryConstraints):
    """One date and amount of a commitment (a promise has one or a few; a plan has many)."""

    Status = InstallmentStatus

    commitment = models.ForeignKey(Commitment, on_delete=models.CASCADE, related_name="installments")
    number = models.PositiveSmallIntegerField(_("número"))
    due_on = models.DateField(_("fecha"))
    amount = models.DecimalField(_("importe"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    status = models.CharField(
        _("estado"), max_length=10, choices=InstallmentStatus.choices, default=InstallmentStatus.PENDING
    )
    # Of this installment, how much the payments covered when it was judged.
    covered = models.DecimalField(_("cubierto"), **MONEY, default=ZERO)
    judged_on = models.DateField(_("evaluada el"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("recordada"), null=True, blank=True)
    # The contact rules (or a missing email address) held the reminder back: not looked at
    # again before this moment, so each hold is logged once on the timeline, with its reason.
    remind_after = models.DateTimeField(_("recordar a partir de"), null=True, blank=True)

    class Meta:
        ordering = ["commitment", "number"]
        verbose_name = _("cuota")
        verbose_name_plural = _("cuotas")
        constraints = [
            models.UniqueConstraint(fields=["commitment", "number"], name="installment_number_unique"),
            models.UniqueConstraint(fields=["commitment", "due_on"], name="installment_date_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="installment_amount_gt_0"),
            models.CheckConstraint(condition=Q(status__in=InstallmentStatus.values), name="installment_status_valid"),
        ]
        indexes = [
            models.Index(fields=["due_on"], name="installment_pending_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.commitment_id} #{self.number} {self.due_on}"


class LadderBump(models.Model):
    """A broken commitment resumes the ladder one step firmer, today: the planner treats
    ``step`` as due for ``invoice`` from ``since`` on, whatever its offset says."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="ladder_bumps")
    step = models.ForeignKey(PolicyStep, on_delete=models.CASCADE, related_name="+")
    since = models.DateField()
    commitment = models.ForeignKey(Commitment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("reanudación de la escalera")
        verbose_name_plural = _("reanudaciones de la escalera")
        constraints = [models.UniqueConstraint(fields=["invoice", "step"], name="bump_once_per_invoice_step")]

    def __str__(self) -> str:
        return f"{self.invoice_id} → {self.step_id} ({self.since})"


class DisputeReason(models.TextChoices):
    PRODUCT = "product", _("Producto defectuoso o incompleto")
    SERVICE = "service", _("Servicio no prestado o deficiente")
    PRICE = "price", _("Precio o importe incorrecto")
    DELIVERY = "delivery", _("Entrega no recibida o tardía")
    DUPLICATE = "duplicate", _("Factura duplicada")
    ALREADY_PAID = "already_paid", _("Dice que ya pagó")
    OTHER = "other", _("Otro")


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Abierta")
    RESOLVED = "resolved", _("Resuelta")


class DisputeResolution(models.TextChoices):
    CREDIT_NOTE = "credit_note", _("Nota de crédito")
    ADJUSTMENT = "adjustment", _("Ajuste del importe")
    REJECTED = "rejected", _("Rechazada: se cobra completa")


class Dispute(OneQueryConstraints):
    """A complaint that withholds payment (docs/domain.md#disputes): its
    invoices are disputed — out of the ladder — until it is resolved."""

    Reason = DisputeReason
    Status = DisputeStatus
    Resolution = DisputeResolution

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="disputes", verbose_name=_("cliente"))
    invoices = models.ManyToManyField(Invoice, related_name="disputes", verbose_name=_("facturas"))
    reason = models.CharField(_("motivo"), max_length=14, choices=DisputeReason.choices)
    description = models.TextField(_("descripción"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_disputes",
        verbose_name=_("responsable"),
    )
    status = models.CharField(_("estado"), max_length=10, choices=DisputeStatus.choices, default=DisputeStatus.OPEN)
    opened_on = models.DateField(_("abierta el"))
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    resolution = models.CharField(_("resolución"), max_length=12, choices=DisputeResolution.choices, blank=True)
    resolution_amount = models.DecimalField(_("importe acreditado"), **MONEY, default=ZERO)
    resolution_notes = models.TextField(_("notas de la resolución"), blank=True)
    resolved_on = models.DateField(_("resuelta el"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opened_on", "-id"]
        verbose_name = _("disputa")
        verbose_name_plural = _("disputas")
        constraints = [
            models.CheckConstraint(condition=Q(reason__in=DisputeReason.values), name="dispute_reason_valid"),
            models.CheckConstraint(condition=Q(status__in=DisputeStatus.values), name="dispute_status_valid"),
            models.CheckConstraint(
                condition=Q(status="open", resolution="")
                | Q(status="resolved", resolved_on__isnull=False) & ~Q(resolution=""),
                name="dispute_resolution_consistent",
            ),
            models.CheckConstraint(condition=Q(resolution_amount__gte=0), name="dispute_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.client} · {self.get_reason_display()}"


class DiscountStatus(models.TextChoices):
    REQUESTED = "requested", _("Pendiente de aprobación")
    APPLIED = "applied", _("Aplicado")
    REJECTED = "rejected", _("Rechazado")


class Discount(OneQueryConstraints):
    """A negotiated discount on an invoice (e.g. for paying now). Above the segment's
    threshold a manager approves it; applied, it settles that part of the invoice as a
    non-cash payment (method "discount"), so balances and collections stay truthful."""

    Status = DiscountStatus

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="discounts", verbose_name=_("factura"))
    amount = models.DecimalField(_("descuento"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    reason = models.CharField(_("motivo"), max_length=255)
    status = models.CharField(_("estado"), max_length=10, choices=DiscountStatus.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_at = models.DateTimeField(default=clock.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_notes = models.CharField(_("notas de la decisión"), max_length=255, blank=True)
    payment = models.OneToOneField(
        "accounts.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="discount"
    )

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("descuento negociado")
        verbose_name_plural = _("descuentos negociados")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="discount_amount_gt_0"),
            models.CheckConstraint(condition=Q(status__in=DiscountStatus.values), name="discount_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="applied") | Q(payment__isnull=False), name="discount_applied_has_payment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} −{self.amount}"


class LateFeeRule(OneQueryConstraints):
    """Surcharges (*recargos*) agreed in advance, per segment: a fixed fee once an invoice is
    late beyond the grace days, and/or simple interest on the open principal — never on
    fees, never compounded."""

    segment = models.OneToOneField(Segment, on_delete=models.CASCADE, related_name="late_fee_rule")
    is_active = models.BooleanField(_("activo"), default=False)
    grace_days = models.PositiveSmallIntegerField(_("días de gracia"), default=0)
    fixed_fee = models.DecimalField(_("cargo fijo por factura"), **MONEY, default=ZERO)
    # Percent of the open principal per 30 days late (pro rata per day).
    monthly_rate = models.DecimalField(
        _("interés mensual (%)"), max_digits=6, decimal_places=3, default=Decimal("0.000")
    )
    # No more than this share of the invoice amount in fees and interest together (0: no cap).
    max_percent = models.DecimalField(_("tope (% de la factura)"), max_digits=6, decimal_places=2, default=ZERO)
    # Discounts above this amount need a manager's approval.
    discount_approval_over = models.DecimalField(_("descuentos que requieren aprobación desde"), **MONEY, default=ZERO)

    class Meta:
        verbose_name = _("regla de recargos")
        verbose_name_plural = _("reglas de recargos")
        constraints = [
            models.CheckConstraint(condition=Q(fixed_fee__gte=0), name="fee_fixed_gte_0"),
            models.CheckConstraint(condition=Q(monthly_rate__gte=0), name="fee_rate_gte_0"),
            models.CheckConstraint(condition=Q(max_percent__gte=0), name="fee_cap_gte_0"),
            models.CheckConstraint(condition=Q(discount_approval_over__gte=0), name="fee_discount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.segment}"


class LateFeeKind(models.TextChoices):
    FIXED = "fixed", _("Cargo fijo por atraso")
    INTEREST = "interest", _("Interés moratorio")


class LateFee(OneQueryConstraints):
    """A surcharge on one invoice, shown apart from the principal. The interest row is
    recomputed nightly (simple interest to date); a waived fee stays with its reason."""

    Kind = LateFeeKind

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="late_fees", verbose_name=_("factura"))
    kind = models.CharField(_("tipo"), max_length=8, choices=LateFeeKind.choices)
    amount = models.DecimalField(_("importe"), **MONEY, default=ZERO)
    computed_on = models.DateField(_("calculado al"))
    waived = models.BooleanField(_("condonado"), default=False)
    waived_reason = models.CharField(_("motivo de la condonación"), max_length=255, blank=True)
    waived_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    waived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recargo")
        verbose_name_plural = _("recargos")
        constraints = [
            models.UniqueConstraint(fields=["invoice", "kind"], name="late_fee_once_per_kind"),
            models.CheckConstraint(condition=Q(kind__in=LateFeeKind.values), name="late_fee_kind_valid"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="late_fee_amount_gte_0"),
            models.CheckConstraint(condition=~Q(waived=True) | ~Q(waived_reason=""), name="late_fee_waiver_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} · {self.get_kind_display()} {self.amount}"


class ClientProfile(OneQueryConstraints):
    """The client's delinquency profile, computed nightly from its history with the
    evidence kept; a collector may override it with a reason."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="profile")
    computed = models.CharField(_("perfil calculado"), max_length=14, choices=Profile.choices, default=Profile.NEW)
    evidence = models.JSONField(_("evidencia"), default=dict)
    computed_at = models.DateTimeField(null=True, blank=True)
    override = models.CharField(_("perfil asignado"), max_length=14, choices=Profile.choices, blank=True)
    override_reason = models.CharField(_("motivo"), max_length=255, blank=True)
    override_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    override_at = models.DateTimeField(null=True, blank=True)
    # Good-payer standing (docs/domain.md#good-payer): when it was gained and lost, to notify the loss once.
    good_payer_since = models.DateField(_("buen pagador desde"), null=True, blank=True)
    good_payer_lost_on = models.DateField(_("dejó de ser buen pagador"), null=True, blank=True)

    class Meta:
        verbose_name = _("perfil de morosidad")
        verbose_name_plural = _("perfiles de morosidad")
        constraints = [
            models.CheckConstraint(condition=Q(computed__in=Profile.values), name="profile_computed_valid"),
            models.CheckConstraint(
                condition=Q(override="") | ~Q(override_reason=""), name="profile_override_needs_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.effective}"

    @property
    def effective(self) -> str:
        """The Python form of the effective profile (override, else computed, else new); its
        SQL and ORM forms are in ``cobranza.rules``, which cannot be imported here (it imports
        these models). tests/cobranza/test_rules.py keeps the forms equal."""
        return self.override or self.computed or Profile.NEW


class SettlementOffset(models.Model):
    """A client's settlement behaviour as the cash forecast reads it (docs/domain.md#cash-forecast):
    how many invoices it settled in the 24 months before ``as_of`` and the median of (settlement
    day − due date) over them (None without any). Written by the profile job with the client's
    profile; a narrow table of its own, so that the forecast joins it in milliseconds."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, primary_key=True, related_name="+")
    as_of = models.DateField()
    settled = models.PositiveIntegerField(default=0)
    median = models.FloatField(null=True, blank=True)
    # The days the forecast adds to the due date: this median, or the segment's or the portfolio's
    # (``SettlementNorm`` of the same day) for a client with fewer than 3 settled invoices.
    days = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.client_id} {self.as_of}: {self.days} ({self.median}, {self.settled})"


class SettlementNorm(models.Model):
    """The median settlement offset of a segment's clients (segment empty: of the whole
    portfolio) over the invoices settled in the 24 months before ``as_of``: the cash forecast's
    fallback for a client with fewer than 3 settled invoices (docs/domain.md#cash-forecast).
    Written by the full nightly profile job with each client's own figures (``SettlementOffset``)."""

    as_of = models.DateField()
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    settled = models.PositiveIntegerField(default=0)
    median = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment"], nulls_distinct=False, name="settlement_norm_one_per_segment"),
        ]

    def __str__(self) -> str:
        return f"{self.segment or '*'} {self.as_of}: {self.median} ({self.settled})"


class HandOffKind(models.TextChoices):
    AGENCY = "agency", _("Agencia de cobranza")
    LEGAL = "legal", _("Vía judicial")


class HandOffStatus(models.TextChoices):
    OPEN = "open", _("En curso")
    RECOVERED = "recovered", _("Recuperado")
    CLOSED = "closed", _("Cerrado sin recuperar")
    RETURNED = "returned", _("Devuelto a cobranza interna")


class HandOff(OneQueryConstraints):
    """A case sent to a collection agency or to legal: the case file, its progress and what
    it recovered."""

    Kind = HandOffKind
    Status = HandOffStatus

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="handoffs", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=8, choices=HandOffKind.choices)
    agency = models.CharField(_("agencia o despacho"), max_length=160, blank=True)
    status = models.CharField(_("estado"), max_length=10, choices=HandOffStatus.choices, default=HandOffStatus.OPEN)
    opened_on = models.DateField(_("enviado el"))
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    currency = models.CharField(_("moneda"), max_length=3)
    amount = models.DecimalField(_("importe enviado"), **MONEY)
    invoices = models.ManyToManyField(Invoice, related_name="handoffs", verbose_name=_("facturas"))
    case_file = models.CharField(_("expediente"), max_length=255, blank=True)
    notes = models.TextField(_("notas"), blank=True)
    closed_on = models.DateField(_("cerrado el"), null=True, blank=True)

    class Meta:
        ordering = ["-opened_on", "-id"]
        verbose_name = _("envío a agencia o jurídico")
        verbose_name_plural = _("envíos a agencia o jurídico")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=HandOffKind.values), name="handoff_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=HandOffStatus.values), name="handoff_status_valid"),
            models.UniqueConstraint(
                fields=["client", "kind"], condition=Q(status="open"), name="handoff_one_open_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client} → {self.get_kind_display()} ({self.opened_on})"


class HandOffUpdate(OneQueryConstraints):
    """Progress of a hand-off: a note from the agency or lawyer, or money recovered."""

    handoff = models.ForeignKey(HandOff, on_delete=models.CASCADE, related_name="updates")
    on = models.DateField(_("fecha"))
    note = models.TextField(_("nota"), blank=True)
    recovered = models.DecimalField(_("recuperado"), **MONEY, default=ZERO)
    payment = models.ForeignKey("accounts.Payment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-on", "-id"]
        constraints = [models.CheckConstraint(condition=Q(recovered__gte=0), name="handoff_update_recovered_gte_0")]

    def __str__(self) -> str:
        return f"{self.handoff_id} {self.on}"


# --- Manager dashboards: early warnings and month-end aging snapshots ----------------------


class AlertKind(models.TextChoices):
    LATENESS_WORSENING = "lateness", _("Paga cada vez más tarde")
    CREDIT_LIMIT = "credit_limit", _("Línea de crédito excedida")
    FIRST_BROKEN_PROMISE = "first_broken", _("Primera promesa incumplida")
    PATTERN_CHANGE = "pattern", _("Cambió su forma de pagar")
    SEASONAL = "seasonal", _("Entra en sus meses flojos")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Nueva")
    ACKNOWLEDGED = "acknowledged", _("Vista")
    CLOSED = "closed", _("Cerrada")


class Alert(OneQueryConstraints):
    """An early warning about a client (docs/domain.md#early-warnings).
    Raised by the nightly job with the evidence that triggered it; once per client, kind and
    period (``period_key``, e.g. the month), so a nightly rerun raises nothing twice."""

    Kind = AlertKind
    Status = AlertStatus

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("cliente"))
    kind = models.CharField(_("tipo"), max_length=14, choices=AlertKind.choices)
    period_key = models.CharField(max_length=20)
    title = models.CharField(_("alerta"), max_length=255)
    # The title as a code to render in the reader's language (accounts.texts).
    title_code, title_params = texts.code_fields("title")
    title_text = texts.Shown("title")
    evidence = models.JSONField(_("evidencia"), default=dict)
    raised_on = models.DateField(_("detectada el"))
    status = models.CharField(_("estado"), max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_on", "-id"]
        verbose_name = _("alerta temprana")
        verbose_name_plural = _("alertas tempranas")
        constraints = [
            models.UniqueConstraint(fields=["client", "kind", "period_key"], name="alert_once_per_period"),
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="alert_status_valid"),
        ]
        indexes = [models.Index(fields=["client"], name="alert_open", condition=Q(status="open"))]

    def __str__(self) -> str:
        return f"{self.client}: {self.title}"


class AgingSnapshot(models.Model):
    """Receivables of one client and currency by aging bucket at a month's end: the basis of
    roll rates and 12-month trends (computed at month end, or backfilled as of a date)."""

    month_end = models.DateField(_("cierre de mes"))
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(_("moneda"), max_length=3)
    current = models.DecimalField(_("al corriente"), **MONEY, default=ZERO)
    d1_30 = models.DecimalField("1-30", **MONEY, default=ZERO)
    d31_60 = models.DecimalField("31-60", **MONEY, default=ZERO)
    d61_90 = models.DecimalField("61-90", **MONEY, default=ZERO)
    d91_120 = models.DecimalField("91-120", **MONEY, default=ZERO)
    d120_plus = models.DecimalField("120+", **MONEY, default=ZERO)
    # Roll rates follow the invoices (docs/domain.md#roll-rate): for each bucket but the last,
    # the balance at the previous month's close of the invoices then in that bucket
    # (``roll_base_*``), and what those same invoices owe at this close in the next bucket
    # (``roll_next_*``).
    roll_base_current = models.DecimalField(**MONEY, default=ZERO)
    roll_base_d1_30 = models.DecimalField(**MONEY, default=ZERO)
    roll_base_d31_60 = models.DecimalField(**MONEY, default=ZERO)
    roll_base_d61_90 = models.DecimalField(**MONEY, default=ZERO)
    roll_base_d91_120 = models.DecimalField(**MONEY, default=ZERO)
    roll_next_current = models.DecimalField(**MONEY, default=ZERO)
    roll_next_d1_30 = models.DecimalField(**MONEY, default=ZERO)
    roll_next_d31_60 = models.DecimalField(**MONEY, default=ZERO)
    roll_next_d61_90 = models.DecimalField(**MONEY, default=ZERO)
    roll_next_d91_120 = models.DecimalField(**MONEY, default=ZERO)
    # False on rows stored before roll rates followed the invoices: their month shows no rate
    # until it is computed again.
    has_roll = models.BooleanField(default=True)
    computed_at = models.DateTimeField(default=clock.now)

    class Meta:
        verbose_name = _("foto de antigüedad")
        verbose_name_plural = _("fotos de antigüedad")
        constraints = [
            models.UniqueConstraint(fields=["month_end", "client", "currency"], name="aging_snapshot_once"),
        ]
        indexes = [models.Index(fields=["month_end", "currency"], name="aging_snapshot_month")]

    def __str__(self) -> str:
        return f"{self.month_end} {self.client_id} {self.currency}"


class AlertDigest(models.Model):
    """The weekly early-warning digest sent to one manager for one ISO week: claimed (this
    row) before the email goes out, so two beat runs never both send it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week = models.CharField(_("semana"), max_length=8)  # ISO week, e.g. 2026-W47
    message_id = models.CharField(max_length=255)
    alerts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("resumen semanal de alertas")
        verbose_name_plural = _("resúmenes semanales de alertas")
        constraints = [models.UniqueConstraint(fields=["user", "week"], name="alert_digest_once_per_week")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.week}"


# --- Integrations: idempotent API writes, self-service links -------------------------------


class IdempotencyKey(models.Model):
    """A write through the API with an ``Idempotency-Key`` header: the first response is
    kept, and a retry with the same key (same user, same endpoint) gets it back unchanged."""

    key = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # null: in progress
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key", "method", "path"], name="idempotency_key_once"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.key}"


class SelfServiceAccess(models.Model):
    """Revocation of a client's self-service links: a link carries the client's ``version``
    when it was signed; raising the version revokes every link issued before."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="selfservice")
    version = models.PositiveIntegerField(default=1)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # The client's day (their time zone) of the last portal visit written to the timeline:
    # the first visit of each day is logged, the others are not (no flood).
    last_visit_on = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.client_id} v{self.version}"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", _("Pendiente de aprobación")
    APPROVED = "approved", _("Aprobada")
    REJECTED = "rejected", _("Rechazada")


class PortalProposal(OneQueryConstraints):
    """A promise or plan the debtor proposed on the self-service page outside the limits of
    their policy (docs/domain.md#portal-limits): nothing is agreed and reminders go on until a
    collector approves it (which creates the commitment, exactly as if it had been accepted)
    or rejects it (the debtor is told)."""

    Status = ProposalStatus

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="portal_proposals", verbose_name=_("cliente")
    )
    kind = models.CharField(_("tipo"), max_length=10, choices=CommitmentKind.choices)
    status = models.CharField(
        _("estado"), max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    currency = models.CharField(_("moneda"), max_length=3)
    total = models.DecimalField(_("importe propuesto"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    # [["YYYY-MM-DD", "amount"], ...]: the dates and amounts as proposed.
    schedule = models.JSONField(_("fechas e importes"))
    invoices = models.ManyToManyField(Invoice, related_name="portal_proposals", verbose_name=_("facturas"))
    comment = models.TextField(_("comentario del cliente"), blank=True)
    # Why it was not accepted at once (the limits it exceeds), for the collector.
    reasons = models.TextField(_("fuera de los límites"), blank=True)
    created_at = models.DateTimeField(default=clock.now)
    task = models.OneToOneField(
        CollectorTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="portal_proposal"
    )
    commitment = models.OneToOneField(
        Commitment, on_delete=models.PROTECT, null=True, blank=True, related_name="portal_proposal"
    )
    decided_at = models.DateTimeField(_("decidida"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_note = models.TextField(_("motivo"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("propuesta del portal")
        verbose_name_plural = _("propuestas del portal")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["promise", "plan"]), name="proposal_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ProposalStatus.values), name="proposal_status_valid"),
            models.CheckConstraint(condition=Q(total__gt=0), name="proposal_total_gt_0"),
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(commitment__isnull=False), name="proposal_approved_has_commitment"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="proposal_decided_has_date"
            ),
            # One proposal waiting per client and currency: a second one would compete for the
            # same invoices.
            models.UniqueConstraint(
                fields=["client", "currency"], condition=Q(status="pending"), name="proposal_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.client} · {self.total} {self.currency}"

    def rows(self) -> list[tuple[dt.date, Decimal]]:
        return [(dt.date.fromisoformat(day), Decimal(amount)) for day, amount in self.schedule]


class PortalMessageKind(models.TextChoices):
    LINK = "link", _("Enlace del portal")
    ACCEPTED = "accepted", _("Confirmación: aceptada")
    REQUESTED = "requested", _("Confirmación: solicitud recibida")
    APPROVED = "approved", _("Confirmación: aprobada")
    REJECTED = "rejected", _("Aviso: rechazada")


class PortalMessageStatus(models.TextChoices):
    PLANNED = "planned", _("Programado")
    SENDING = "sending", _("Enviando")
    SENT = "sent", _("Enviado")
    SKIPPED = "skipped", _("Omitido")
    FAILED = "failed", _("Fallido")


class PortalMessage(OneQueryConstraints):
    """One message about the self-service page to one client: the link (sent by staff) or a
    confirmation of a promise or plan. Sent like a notice (claim, re-check, send, record:
    ``cobranza.portal.jobs``), under the same contact choice and contact rules."""

    Kind = PortalMessageKind
    Status = PortalMessageStatus

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="portal_messages")
    kind = models.CharField(max_length=10, choices=PortalMessageKind.choices)
    channel = models.CharField(max_length=10, choices=StepChannel.choices)
    status = models.CharField(max_length=10, choices=PortalMessageStatus.choices, default=PortalMessageStatus.PLANNED)
    proposal = models.ForeignKey(PortalProposal, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    commitment = models.ForeignKey(Commitment, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # One message per send: a repeated request (double click, retried form) has the same key.
    dedupe_key = models.CharField(max_length=80, blank=True, default="")
    scheduled_at = models.DateTimeField(default=clock.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    provider_ref = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PortalMessageKind.values), name="portal_message_kind_valid"),
            models.CheckConstraint(
                condition=Q(channel__in=["email", "sms", "whatsapp"]), name="portal_message_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=PortalMessageStatus.values), name="portal_message_status_valid"
            ),
            models.UniqueConstraint(
                fields=["client", "dedupe_key"], condition=~Q(dedupe_key=""), name="portal_message_once"
            ),
        ]
        indexes = [
            models.Index(fields=["scheduled_at"], name="portal_message_due", condition=Q(status="planned")),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.kind} {self.channel} {self.status}"


# --- Imports from accounting exports --------------------------------------------------------


class ImportKind(models.TextChoices):
    CLIENTS = "clients", _("Clientes")
    INVOICES = "invoices", _("Facturas")
    PAYMENTS = "payments", _("Pagos")
    # One invoice export with a settled-date column: its clients, invoices and payments.
    LEDGER = "ledger", _("Historial de facturas (clientes, facturas y pagos)")


class ImportMapping(models.Model):
    """How one source's columns map to ours, saved once and reused (per source and kind)."""

    name = models.CharField(_("origen"), max_length=120)
    kind = models.CharField(_("tipo"), max_length=10, choices=ImportKind.choices)
    columns = models.JSONField(_("columnas"), default=dict)  # our field -> their column header
    date_format = models.CharField(_("formato de fecha"), max_length=12, default="auto")
    decimal_separator = models.CharField(_("separador decimal"), max_length=1, default=".")
    encoding = models.CharField(_("codificación"), max_length=20, default="auto")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        verbose_name = _("mapeo de importación")
        verbose_name_plural = _("mapeos de importación")
        constraints = [models.UniqueConstraint(fields=["name", "kind"], name="import_mapping_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class ImportJobStatus(models.TextChoices):
    PENDING = "pending", _("En cola")
    RUNNING = "running", _("En proceso")
    DONE = "done", _("Terminada")
    REJECTED = "rejected", _("Rechazada: no se escribió nada")
    FAILED = "failed", _("Falló")


class ImportJob(OneQueryConstraints):
    """One uploaded file being checked (dry run) or imported, with its progress and the
    row-level errors (row, column, reason). A rejected import writes nothing."""

    Status = ImportJobStatus

    kind = models.CharField(_("tipo"), max_length=10, choices=ImportKind.choices)
    mapping = models.ForeignKey(ImportMapping, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    file_name = models.CharField(_("archivo"), max_length=255)
    file_path = models.CharField(max_length=500)
    dry_run = models.BooleanField(_("simulación"), default=True)
    status = models.CharField(
        _("estado"), max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.PENDING
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)  # [{"row": n, "column": "...", "reason": "..."}]
    summary = models.JSONField(default=dict)  # created / updated / unchanged counts
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("importación")
        verbose_name_plural = _("importaciones")
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportJobStatus.values), name="import_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"


# --- Outgoing webhooks: endpoints that receive our events, and each delivery ----------------


class WebhookEvent(models.TextChoices):
    NOTICE_SENT = "notice.sent", _("Aviso enviado")
    PROMISE_BROKEN = "promise.broken", _("Promesa incumplida")
    DISPUTE_OPENED = "dispute.opened", _("Disputa abierta")
    PAYMENT_RECEIVED = "payment.received", _("Pago recibido")
    PING = "ping", _("Evento de prueba")


# What an endpoint may subscribe to (the ping goes to whoever asks for it).
SUBSCRIBABLE_EVENTS = [e for e in WebhookEvent if e != WebhookEvent.PING]


class WebhookEndpoint(models.Model):
    """A URL of another system that receives our events, signed with its own secret."""

    name = models.CharField(_("nombre"), max_length=120)
    url = models.URLField(_("URL"), max_length=500)
    # Generated by us, shown to administrators, used as the HMAC key: it cannot be hashed.
    secret = models.CharField(_("secreto de firma"), max_length=80)
    events = models.JSONField(_("eventos"), default=list)  # a subset of SUBSCRIBABLE_EVENTS
    is_active = models.BooleanField(_("activo"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("creado"), default=clock.now)
    secret_rotated_at = models.DateTimeField(_("secreto renovado"), null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("webhook de salida")
        verbose_name_plural = _("webhooks de salida")

    def __str__(self) -> str:
        return self.name


class WebhookDeliveryStatus(models.TextChoices):
    PLANNED = "planned", _("En cola")
    SENDING = "sending", _("Enviando")
    DELIVERED = "delivered", _("Entregado")
    FAILED = "failed", _("Fallido")


class WebhookDelivery(OneQueryConstraints):
    """One event for one endpoint: written in the transaction that produced the event
    (an outbox row), then claimed, sent and retried with backoff by the workers. The
    ``event_id`` is the same on every attempt, so the receiver can ignore repeats."""

    Status = WebhookDeliveryStatus

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(_("evento"), max_length=20, choices=WebhookEvent.choices)
    event_key = models.CharField(max_length=120)  # the domain event, e.g. "payment.received:42"
    event_id = models.UUIDField(_("id del evento"))
    payload = models.JSONField(default=dict)
    status = models.CharField(
        _("estado"), max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PLANNED
    )
    attempts = models.PositiveSmallIntegerField(_("intentos"), default=0)
    next_attempt_at = models.DateTimeField(_("próximo intento"), default=clock.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("última respuesta HTTP"), null=True, blank=True)
    last_error = models.CharField(_("último error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("entregado"), null=True, blank=True)
    created_at = models.DateTimeField(_("creado"), default=clock.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("entrega de webhook")
        verbose_name_plural = _("entregas de webhook")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_key"], name="webhook_delivery_once_per_event"),
            models.CheckConstraint(condition=Q(status__in=WebhookDeliveryStatus.values), name="webhook_status_valid"),
            models.CheckConstraint(condition=Q(event__in=WebhookEvent.values), name="webhook_event_valid"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(status__in=["planned", "sending"])
            ),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_by_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"


class DashboardSummary(models.Model):
    """The managers' dashboard for one set of filters, kept when computing it live took longer
    than ``settings.DASHBOARD_LIVE_MAX_MS`` (a large portfolio). The page then shows these
    figures with the time they were computed; a beat job recomputes the summaries viewed
    lately, and a manager can recompute one at once. Small portfolios never get one."""

    key = models.CharField(max_length=64, unique=True)  # sha256 of the format version, filters and language
    filters = models.JSONField()
    language = models.CharField(max_length=10)
    # The computed ``metrics.Dashboard``, pickled: written and read only by cobranza.dashboard.summaries
    # (the same trust as Django's own cache backends, which pickle too).
    data = models.BinaryField()
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    viewed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("resumen del tablero")
        verbose_name_plural = _("resúmenes del tablero")

    def __str__(self) -> str:
        return f"{self.filters} ({self.language}) @ {self.computed_at:%Y-%m-%d %H:%M}"


# --- The business that is owed: its identity in everything a debtor receives ----------------


NUMBER_FORMAT_CHOICES = numbers.CHOICES
NUMBER_FORMAT_CODES = list(numbers.RULES)


class BusinessProfile(OneQueryConstraints):
    """The business that sends the reminders (one row, id 1): its name, sender, signature,
    ways to pay and legal footer, shown in every email, SMS, WhatsApp message, letter, portal
    page, statement and hand-off case file. Edited by an administrator on the settings page
    (``cobranza.business``); read through ``cobranza.business.selectors.current()``.
    Our product's name never stands in for it (docs/domain.md, "Who the debtor hears from")."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    trade_name = models.CharField(_("nombre comercial"), max_length=120, blank=True)
    legal_name = models.CharField(_("razón social"), max_length=200, blank=True)
    tax_id = models.CharField(_("RFC / NIF / identificación fiscal"), max_length=40, blank=True)
    logo = models.FileField(_("logotipo"), upload_to="marca/", blank=True)
    brand_color = models.CharField(
        _("color de la marca"),
        max_length=7,
        default="#0d6efd",
        help_text=_("En formato #RRGGBB."),
    )
    sender_name = models.CharField(_("nombre del remitente"), max_length=120, blank=True)
    sender_email = models.EmailField(_("correo del remitente"), blank=True)
    reply_to = models.EmailField(_("responder a"), blank=True)
    phone = models.CharField(_("teléfono"), max_length=40, blank=True)
    website = models.URLField(_("sitio web"), blank=True)
    signature_es = models.TextField(_("firma (español)"), blank=True)
    signature_en = models.TextField(_("firma (inglés)"), blank=True)
    bank_name = models.CharField(_("banco"), max_length=120, blank=True)
    bank_account_holder = models.CharField(_("titular de la cuenta"), max_length=200, blank=True)
    clabe = models.CharField(_("CLABE"), max_length=18, blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bank_account = models.CharField(_("número de cuenta"), max_length=40, blank=True)
    payment_link_template = models.CharField(
        _("enlace de pago"),
        max_length=500,
        blank=True,
        help_text=_("Dirección del proveedor de pagos con {cliente}, {facturas}, {importe} y {moneda}."),
    )
    legal_footer_es = models.TextField(_("pie legal (español)"), blank=True)
    legal_footer_en = models.TextField(_("pie legal (inglés)"), blank=True)
    public_base_url = models.URLField(
        _("dirección pública"),
        blank=True,
        help_text=_(
            "Dirección con la que sus clientes llegan a esta aplicación (p. ej. https://cobranza.suempresa.mx)."
        ),
    )
    number_format = models.CharField(
        _("formato de números"),
        max_length=5,
        blank=True,
        choices=NUMBER_FORMAT_CHOICES,
        help_text=_(
            "Separadores de miles y decimales y lugar de la moneda en pantallas, exportaciones, PDF, "
            "gráficas y mensajes a sus clientes. Vacío: el del país de la empresa."
        ),
    )
    setup_completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("datos de la empresa")
        verbose_name_plural = _("datos de la empresa")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="business_profile_single_row"),
            models.CheckConstraint(
                condition=Q(brand_color__regex=r"^#[0-9A-Fa-f]{6}$"), name="business_profile_brand_color_hex"
            ),
            models.CheckConstraint(
                condition=Q(number_format__in=["", *NUMBER_FORMAT_CODES]), name="business_profile_number_format_known"
            ),
        ]

    def __str__(self) -> str:
        return self.trade_name or self.legal_name or "—"


class InboundChannel(models.TextChoices):
    EMAIL = "email", _("Correo electrónico")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")


class InboundMatch(models.TextChoices):
    TOKEN = "token", _("Dirección de respuesta")
    SENDER = "sender", _("Remitente")
    NONE = "", _("Sin asignar")


class InboundMessage(OneQueryConstraints):
    """A message a debtor sent us: an email reply or an SMS/WhatsApp message, posted by the
    provider's inbound webhook (docs/domain.md#replies). Kept even when no client matches (a
    manager sees those), once per provider message id."""

    Channel = InboundChannel
    Match = InboundMatch

    channel = models.CharField(_("canal"), max_length=10, choices=Channel.choices)
    # The email's Message-ID (or a digest of the raw message when it has none), or the SMS /
    # WhatsApp provider's message id: the same message posted twice is recorded once.
    provider_id = models.CharField(_("identificador del proveedor"), max_length=255)
    client = models.ForeignKey(
        Client,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_messages",
        verbose_name=_("cliente"),
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("contacto")
    )
    matched_by = models.CharField(_("asignado por"), max_length=8, choices=Match.choices, blank=True, default="")
    interaction = models.OneToOneField(
        Interaction, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound_message"
    )
    sender = models.CharField(_("remitente"), max_length=254)
    recipient = models.CharField(_("destinatario"), max_length=254, blank=True)
    subject = models.CharField(_("asunto"), max_length=255, blank=True)
    body = models.TextField(_("texto"), blank=True)
    received_at = models.DateTimeField(_("recibido"), default=clock.now)
    read_at = models.DateTimeField(_("leído"), null=True, blank=True)
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("mensaje recibido")
        verbose_name_plural = _("mensajes recibidos")
        constraints = [
            models.UniqueConstraint(fields=["channel", "provider_id"], name="inbound_once_per_provider_id"),
            models.CheckConstraint(condition=Q(channel__in=InboundChannel.values), name="inbound_channel_valid"),
            models.CheckConstraint(
                condition=Q(client__isnull=True, matched_by="", interaction__isnull=True)
                | Q(client__isnull=False, interaction__isnull=False) & ~Q(matched_by=""),
                name="inbound_matched_has_client_and_entry",
            ),
        ]
        indexes = [
            models.Index(
                fields=["client", "received_at"], condition=Q(read_at__isnull=True), name="inbound_unread_by_client"
            ),
            models.Index(fields=["-received_at"], condition=Q(client__isnull=True), name="inbound_unmatched"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.sender}"


# --- The worklist's ranking facts, stored (docs/domain.md#worklist-ranking) ------------------------
# What the queue ranks a client by when nothing is due today — its amount at risk, overdue
# balance, broken promises and the score they make with its profile and segment — computed for
# every client by ``cobranza.worklist.jobs.worklist_rank_refresh`` as of one day. Triggers on the
# tables these facts are read from (invoices, holds, commitments, the client, its dunning and
# profile rows) record the clients a write touched in ``WorklistRankDirty`` in the writer's own
# transaction (COPY included); a change to a policy or a segment records every client (a row
# without a client). The worklist reads the stored facts only for the day they were computed
# for, and recomputes those of the recorded clients as it reads: what it shows is always exact.


class WorklistRank(models.Model):
    """One client's ranking facts as of ``WorklistRankState.computed_on`` (a derived copy:
    no foreign key, the refresh rewrites it)."""

    client_id = models.BigIntegerField(primary_key=True)
    at_risk = models.DecimalField(max_digits=18, decimal_places=2, null=True)
    at_risk_currency = models.CharField(max_length=3, null=True)
    has_risk = models.BooleanField(default=False)
    ladder = models.BooleanField(default=False)
    overdue_max = models.DecimalField(max_digits=18, decimal_places=2, default=ZERO)
    oldest_overdue = models.DateField(null=True)
    broken_count = models.IntegerField(default=0)
    # risk + broken promises + profile + segment points: the score with nothing due today.
    base_score = models.IntegerField(default=0)
    # The client's, for the queue's scope and call windows (read from the index below).
    collector_id = models.BigIntegerField(null=True)
    country = models.CharField(max_length=2, default="")
    time_zone = models.CharField(max_length=64, default="")

    class Meta:
        # The quiet clients at risk in the queue's order, per (country, time zone) — a call
        # window — of everybody or of a collector: ``Worklist`` reads the first N of each.
        indexes = [
            models.Index(
                "country",
                "time_zone",
                models.F("base_score").desc(),
                models.F("oldest_overdue").asc(nulls_last=True),
                models.F("overdue_max").desc(),
                name="worklist_rank_order",
                condition=Q(has_risk=True, ladder=True),
            ),
            models.Index(
                "collector_id",
                "country",
                "time_zone",
                models.F("base_score").desc(),
                models.F("oldest_overdue").asc(nulls_last=True),
                models.F("overdue_max").desc(),
                name="worklist_rank_collector_order",
                condition=Q(has_risk=True, ladder=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.base_score}"


class WorklistRankDirty(models.Model):
    """A client whose stored ranking facts a write may have changed (``client_id`` NULL: every
    client). Rows are only added by triggers and removed by the refresh that recomputed them."""

    id = models.BigAutoField(primary_key=True)
    client_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["client_id"], name="worklist_dirty_client")]

    def __str__(self) -> str:
        return str(self.client_id) if self.client_id is not None else "*"


class WorklistRankState(OneQueryConstraints):
    """The day the stored ranking facts were computed for (one row)."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    computed_on = models.DateField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="worklist_rank_state_one_row")]

    def __str__(self) -> str:
        return self.computed_on.isoformat()
