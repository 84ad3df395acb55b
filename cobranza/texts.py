"""The texts collections writes (timeline entries, task titles, notice reasons, alerts), each
defined once with a code (accounts.texts, docs/domain.md#texts). A code, once stored, is
kept: rename the wording freely, never the code (old rows would fall back to their stored
Spanish)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

# The parameter helpers, re-exported so a writer needs one import.
from accounts.texts import Text, choice, columns, date, define, from_columns, join, money, number  # noqa: F401

# --- contact rules and pacing (engine.contact_rules) ------------------------------------------
PACING_DAYS = define(
    "rules.pacing_days",
    ngettext_lazy(
        "Un aviso por día como máximo: el último salió el %(date)s",
        "Mínimo de %(days)d días entre avisos: el último salió el %(date)s",
        "days",
    ),
)
PACING_ESCALATIONS = define(
    "rules.pacing_escalations",
    ngettext_lazy(
        "Mínimo de %(days)d día entre escalamientos (carta, agencia, vía judicial): el último salió el %(date)s",
        "Mínimo de %(days)d días entre escalamientos (carta, agencia, vía judicial): el último salió el %(date)s",
        "days",
    ),
)
MISSING_RULES = define(
    "rules.missing",
    _(
        "No hay reglas de contacto para el país %(country)s: configúrelas (Reglas de contacto) antes de "
        "contactar a este cliente"
    ),
)
CAP_ALL = define(
    "rules.cap_all",
    ngettext_lazy(
        "Límite de %(cap)d contacto en 7 días (todos los canales) alcanzado",
        "Límite de %(cap)d contactos en 7 días (todos los canales) alcanzado",
        "cap",
    ),
)
CAP_EMAIL = define(
    "rules.cap_email",
    ngettext_lazy(
        "Límite de %(cap)d correo en 7 días alcanzado", "Límite de %(cap)d correos en 7 días alcanzado", "cap"
    ),
)
CAP_SMS = define(
    "rules.cap_sms",
    ngettext_lazy("Límite de %(cap)d SMS en 7 días alcanzado", "Límite de %(cap)d SMS en 7 días alcanzado", "cap"),
)
CAP_WHATSAPP = define(
    "rules.cap_whatsapp",
    ngettext_lazy(
        "Límite de %(cap)d mensaje de WhatsApp en 7 días alcanzado",
        "Límite de %(cap)d mensajes de WhatsApp en 7 días alcanzado",
        "cap",
    ),
)
CAP_CALL = define(
    "rules.cap_call",
    ngettext_lazy(
        "Límite de %(cap)d llamada en 7 días alcanzado", "Límite de %(cap)d llamadas en 7 días alcanzado", "cap"
    ),
)
WEEKDAYS = (
    define("rules.monday", _("lunes")),
    define("rules.tuesday", _("martes")),
    define("rules.wednesday", _("miércoles")),
    define("rules.thursday", _("jueves")),
    define("rules.friday", _("viernes")),
    define("rules.saturday", _("sábado")),
    define("rules.sunday", _("domingo")),
)
HOLIDAY = define("rules.holiday", _("Día festivo: %(name)s"))
WEEKEND = define("rules.weekend", _("Fin de semana (no se contacta sábados ni domingos)"))
DAY_NOT_ALLOWED = define("rules.day_not_allowed", _("Día no permitido para contactar: %(day)s"))
OUTSIDE_HOURS = define("rules.outside_hours", _("Fuera del horario permitido (%(start)s–%(end)s, %(tz)s)"))
SPREAD_SLOT = define(
    "rules.spread_slot",
    _("Envíos repartidos en el horario (%(start)s–%(end)s): la hora de este cliente es las %(slot)s"),
)
BUSINESS_NOT_SET_UP = define(
    "business.not_set_up",
    _(
        "Falta configurar los datos de la empresa (nombre, remitente, dirección pública): un administrador debe "
        "completarlos antes de enviar mensajes a los clientes"
    ),
)

# --- dispatch (engine.dispatch) ---------------------------------------------------------------
OMITTED = define("notice.omitted", _("omitido"))
CLIENT_WRITTEN_OFF = define("notice.written_off", _("Cliente castigado: no se envían avisos."))
CLIENT_HANDED_OFF = define(
    "notice.handed_off", _("El cliente está %(status)s: la gestión ya no la hacen nuestros recordatorios.")
)
CLIENT_PAUSED = define("notice.paused", _("Cliente en pausa hasta el %(date)s: %(reason)s"))
INTERRUPTED = define("notice.interrupted", _("Envío interrumpido: no se sabe si salió. Verifique antes de reenviar."))
CHECK_INTERRUPTED = define("task.check_interrupted", _("Verificar aviso interrumpido: %(step)s"))
SUPERSEDED = define("notice.superseded", _("Reemplazado por un paso más firme planeado después: «%(step)s»."))
# Written by the planner's SQL (engine.planner), which fills in the step's name.
SUPERSEDED_SAME_DAY = define(
    "notice.superseded_same_day", _("Reemplazado por un paso más firme planeado el mismo día: «%(step)s».")
)
NOT_PENDING = define(
    "notice.not_pending",
    _(
        "Las facturas del aviso ya no están pendientes (pagadas, en disputa, retenidas o con un compromiso "
        "de pago vigente)."
    ),
)
NO_CONTACT = define("notice.no_contact", _("Sin contacto que acepte %(channel)s: se pidió al gestor conseguir uno."))
FIND_CONTACT = define("task.find_contact", _("Conseguir un contacto para %(channel)s"))
TEMPLATE_FAILED = define("notice.template_failed", _("La plantilla no se pudo generar: %(error)s"))
REJECTED = define("notice.rejected", _("Envío rechazado: %(error)s"))
DEFERRED = define("notice.deferred", _("%(step)s aplazado hasta %(when)s: %(reason)s"))
FAILED_AFTER = define("notice.failed_after", _("Fallo tras %(n)s intentos: %(error)s"))
RETRY = define("notice.retry", _("Reintento programado: %(error)s"))
COULD_NOT_OPEN = define("notice.could_not_open", _("No se pudo abrir el envío: %(error)s"))
TASK_CREATED = define("notice.task_created", _("%(step)s: tarea creada para %(who)s"))
THE_TEAM = define("notice.the_team", _("el equipo de cobranza"))

# --- escalation (engine.escalation) -----------------------------------------------------------
ESCALATED = define(
    "escalation.escalated",
    _("Escalamiento: la escalera de cobranza terminó sin pago; el cliente pasa a «En cobranza»."),
)
ESCALATION_COLLECTOR = define("task.escalation_collector", _("Escalamiento: decidir el siguiente paso con el cliente"))
ESCALATION_MANAGER = define(
    "task.escalation_manager", _("Escalamiento: revisar la cuenta (la escalera terminó sin pago)")
)

# --- early warnings (alerts) ------------------------------------------------------------------
ALERT_LATENESS = define(
    "alert.lateness",
    _("Paga cada vez más tarde: %(recent)s días de atraso promedio en 90 días (antes %(base)s)"),
)
ALERT_CREDIT_LIMIT = define(
    "alert.credit_limit", _("Línea de crédito excedida: saldo %(balance)s con límite de %(limit)s")
)
ALERT_FIRST_BROKEN = define(
    "alert.first_broken_promise", _("Primera promesa de pago incumplida: %(amount)s para el %(date)s")
)
ALERT_PATTERN = define(
    "alert.pattern_change", _("Pagaba cada mes (%(paid)s de %(months)s meses) y lleva %(days)s días sin pagar")
)
ALERT_SEASONAL = define("alert.seasonal", _("Entra en sus meses flojos: %(month)s"))
ALERT_RAISED = define("alert.raised", _("Alerta temprana: %(title)s"))
ALERT_CLOSED = define("alert.closed", _("Alerta cerrada: %(title)s"))

# --- the worklist -----------------------------------------------------------------------------
TASK_DONE = define("task.done", _("Tarea hecha: %(title)s"))

# --- promises and payment plans (workspace.jobs) ----------------------------------------------
PLAN_MISSED = define("task.plan_missed", _("Cuota %(n)s del plan incumplida: %(amount)s del %(date)s"))
COMMITMENT_KEPT = define("commitment.kept", _("%(kind)s cumplida: pagó %(paid)s de %(total)s"))
COMMITMENT_PARTIAL = define("commitment.partial", _("%(kind)s cumplida en parte: pagó %(paid)s de %(total)s"))
COMMITMENT_BROKEN = define("commitment.broken", _("%(kind)s incumplida: pagó %(paid)s de %(total)s"))
LADDER_RESUMES = define("task.ladder_resumes", _("La escalera se reanuda un paso más firme."))
LADDER_ENDED = define("task.ladder_ended", _("La escalera ya no tiene pasos: decida el siguiente."))
REMINDER_NOT_SENT = define("installment.reminder_failed", _("Recordatorio de cuota no enviado: %(error)s"))
REMINDER_NO_EMAIL = define("installment.no_email", _("el cliente no tiene un correo activo para recibirlo"))
REMINDER_DEFERRED = define(
    "installment.reminder_deferred", _("Recordatorio de la cuota del %(due)s aplazado hasta %(when)s: %(reason)s")
)

# --- payer profiles and late fees (profiles) --------------------------------------------------
GOOD_PAYER_LOST = define("profile.good_payer_lost", _("Perdió la condición de buen pagador (ahora: %(profile)s)"))
GOOD_PAYER_LOST_TASK = define("task.good_payer_lost", _("Perdió la condición de buen pagador: %(name)s"))
LATE_FEE_ADDED = define(
    "fee.fixed_added", _("Recargo por atraso de %(amount)s en la factura %(number)s (aparte del saldo)")
)

# --- what a person did on the dunning pages (ops) ---------------------------------------------
REMINDERS_PAUSED = define("ops.paused", _("Recordatorios en pausa hasta el %(date)s"))
REMINDERS_RESUMED = define("ops.resumed", _("Recordatorios reanudados"))
POLICY_SET = define("ops.policy_set", _("Política de cobranza: %(name)s"))
SEGMENT_POLICY = define("ops.segment_policy", _("la del segmento"))
INVOICE_HELD = define("ops.invoice_held", _("Factura %(n)s retenida: sin recordatorios"))
INVOICE_RELEASED = define("ops.invoice_released", _("Factura %(n)s liberada: vuelve a la escalera"))
NOTICE_APPROVED = define("ops.notice_approved", _("Aviso aprobado: %(step)s"))
NOTICE_CANCELLED = define("ops.notice_cancelled", _("Aviso cancelado: %(step)s"))
NOTICE_REQUEUED = define("ops.notice_requeued", _("Aviso fallido enviado de nuevo a la cola: %(step)s"))
LETTER_PRINTED = define("ops.letter_printed", _("Carta impresa: %(step)s"))

# --- the self-service portal (portal.services) ------------------------------------------------
PORTAL_PROMISE = define("portal.promise", _("Promesa de pago de %(amount)s para el %(date)s"))
PORTAL_PLAN = define(
    "portal.plan",
    ngettext_lazy("Plan de pagos de %(n)s cuota: %(dates)s", "Plan de pagos de %(n)s cuotas: %(dates)s", "n"),
)
PORTAL_ACCEPTED_F = define("portal.accepted_promise", _("Portal: %(what)s (aceptada)"))
PORTAL_ACCEPTED_M = define("portal.accepted_plan", _("Portal: %(what)s (aceptado)"))
PORTAL_PENDING = define("portal.pending", _("Portal: %(what)s (pendiente de aprobación)"))
PORTAL_PROMISE_TASK = define("task.portal_promise", _("Promesa desde el portal: %(amount)s para el %(date)s"))
PORTAL_PLAN_TASK = define(
    "task.portal_plan",
    ngettext_lazy("Plan de pagos desde el portal: %(n)s cuota", "Plan de pagos desde el portal: %(n)s cuotas", "n"),
)
PORTAL_DECIDE_TASK = define("task.portal_decide", _("Aprobar o rechazar: %(what)s"))
PORTAL_VISITED = define("portal.visited", _("Visitó el portal de autoservicio"))
PORTAL_STATEMENT = define("portal.statement", _("Descargó su estado de cuenta (PDF) en el portal"))
PROPOSAL_APPROVED = define("portal.proposal_approved", _("Propuesta del portal aprobada: %(kind)s de %(total)s"))
PROPOSAL_REJECTED = define("portal.proposal_rejected", _("Propuesta del portal rechazada: %(kind)s de %(total)s"))

# --- hand-offs to an agency or a lawyer (handoffs) --------------------------------------------
HANDOFF_SENT = define(
    "handoff.sent",
    ngettext_lazy(
        "%(case)s: expediente enviado con %(count)d factura por %(amount)s",
        "%(case)s: expediente enviado con %(count)d facturas por %(amount)s",
        "count",
    ),
)
HANDOFF_RECOVERED = define("handoff.recovered", _("%(case)s · recuperado %(amount)s"))
HANDOFF_PROGRESS = define("handoff.progress", _("%(case)s · avance: %(note)s"))
HANDOFF_CLOSED = define("handoff.closed", _("%(case)s · caso cerrado: %(status)s"))

# --- disputes and commitments a collector records (workspace.services) ------------------------
DISPUTE_OPENED = define("dispute.opened", _("Disputa abierta: %(reason)s"))
DISPUTE_TASK = define("task.dispute", _("Resolver la disputa: %(reason)s (%(list)s)"))
DISPUTE_RESOLVED = define("dispute.resolved", _("Disputa resuelta: %(resolution)s"))
COMMITMENT_MADE = define("commitment.made", _("%(kind)s: %(dates)s"))
COMMITMENT_CANCELLED = define("commitment.cancelled", _("%(kind)s cancelada"))

# --- discounts, profile overrides and waived fees (profiles.services) -------------------------
DISCOUNT_TASK = define("task.discount", _("Aprobar un descuento de %(amount)s en la factura %(n)s: %(name)s"))
DISCOUNT_REQUESTED = define(
    "discount.requested", _("Descuento de %(amount)s solicitado en la factura %(n)s: pendiente de aprobación")
)
DISCOUNT_APPLIED = define("discount.applied", _("Descuento de %(amount)s aplicado en la factura %(n)s"))
DISCOUNT_APPROVED = define("discount.approved", _("Descuento de %(amount)s aprobado y aplicado en la factura %(n)s"))
DISCOUNT_REJECTED = define("discount.rejected", _("Descuento de %(amount)s rechazado en la factura %(n)s"))
PROFILE_SET = define("profile.override_set", _("Perfil de morosidad asignado: %(profile)s (calculado: %(computed)s)"))
PROFILE_CLEARED = define("profile.override_cleared", _("Perfil asignado retirado: vuelve al calculado (%(computed)s)"))
FEE_WAIVED = define("fee.waived", _("Recargo condonado: %(kind)s de %(amount)s en la factura %(number)s"))

# --- replies from the debtor (replies.services) -----------------------------------------------
REPLY_RECEIVED = define("reply.received", _("Respuesta del cliente: %(text)s"))
REPLY_NO_TEXT = define("reply.no_text", _("(sin texto)"))
