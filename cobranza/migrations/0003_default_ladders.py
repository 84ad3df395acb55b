"""Default message templates (es, en) and dunning ladders for the seeded segments.

Templates follow the seeds: a courteous reminder a few days before the due date, then a
pressure that rises gradually while tone and channel change (email, SMS or WhatsApp, a call
from the collector, a firm notice, a final notice that says plainly which benefits can be lost
and that the account may go to an agency or to legal — stated as consequences, never as
threats, per CONDUSEF). Every email, SMS and WhatsApp text offers a way to opt out
(Regulation F). All of them list every invoice of the notice with number, balance, due date
and days overdue, the total per currency, the collector and the payment link.

Ladders per segment (offsets in days from the due date):

- cuenta-clave: −5 email, +3 call, +10 email, +20 call, +35 manager review*, +60 letter*
- regular:      −3 email, +1 email, +7 SMS, +15 call, +30 firm email, +45 final email, +60 review*
- esporadico:   −2 email, +1 email, +4 SMS, +8 call, +15 final email, +25 agency* (≥ 1,000)
- alto-riesgo:  −5 email, 0 WhatsApp, +3 call, +7 firm email, +12 call, +20 letter, +30 legal* (≥ 5,000)

(* requires approval). Idempotent: templates by ``code``, texts by (template, language),
policies by segment, steps by (policy, position); reversing does nothing. The texts are data:
``cobranza.engine.messaging.validate_template_text`` checks them (tests/cobranza/test_messaging.py).
"""

from decimal import Decimal

from django.db import migrations

# --- pieces shared by the texts ------------------------------------------------------------

ONE = "facturas|length == 1"

GREETING_ES = "Estimado(a) {{ contacto|default:cliente }}:\n\n"
GREETING_EN = "Dear {{ contacto|default:cliente }},\n\n"

LINES_ES = (
    "{% for f in facturas %}\n"
    "- Factura {{ f.numero }}: saldo {{ f.saldo }}"
    "{% if f.saldo.cantidad != f.importe.cantidad %} (importe original {{ f.importe }}){% endif %}; "
    "{% if f.dias_vencida %}venció el {{ f.vencimiento }}, {{ f.dias_vencida }} día{{ f.dias_vencida|pluralize }} "
    "de atraso"
    "{% elif f.dias_para_vencer %}vence el {{ f.vencimiento }} "
    "(en {{ f.dias_para_vencer }} día{{ f.dias_para_vencer|pluralize }})"
    "{% else %}vence hoy, {{ f.vencimiento }}{% endif %}.\n"
    "{% endfor %}\n"
)
LINES_EN = (
    "{% for f in facturas %}\n"
    "- Invoice {{ f.numero }}: balance {{ f.saldo }}"
    "{% if f.saldo.cantidad != f.importe.cantidad %} (original amount {{ f.importe }}){% endif %}; "
    "{% if f.dias_vencida %}was due {{ f.vencimiento }}, {{ f.dias_vencida }} day{{ f.dias_vencida|pluralize }} "
    "overdue"
    "{% elif f.dias_para_vencer %}due {{ f.vencimiento }} "
    "(in {{ f.dias_para_vencer }} day{{ f.dias_para_vencer|pluralize }})"
    "{% else %}due today, {{ f.vencimiento }}{% endif %}.\n"
    "{% endfor %}\n"
)

LINK_ES = (
    "{% if enlace_pago %}\n\nPuede consultar su estado de cuenta y pagar en línea en: {{ enlace_pago }}\n{% endif %}\n"
)
LINK_EN = "{% if enlace_pago %}\n\nYou can view your statement and pay online at: {{ enlace_pago }}\n{% endif %}\n"

SIGNATURE_ES = (
    "Atentamente,\n\n"
    "{{ gestor.nombre }}\n"
    "{{ empresa }}\n"
    "{% if gestor.correo %}\nCorreo: {{ gestor.correo }}\n{% endif %}\n"
    "{% if gestor.telefono %}\nTeléfono: {{ gestor.telefono }}\n{% endif %}\n"
)
SIGNATURE_EN = (
    "Kind regards,\n\n"
    "{{ gestor.nombre }}\n"
    "{{ empresa }}\n"
    "{% if gestor.correo %}\nEmail: {{ gestor.correo }}\n{% endif %}\n"
    "{% if gestor.telefono %}\nPhone: {{ gestor.telefono }}\n{% endif %}\n"
)

OPT_OUT_EMAIL_ES = (
    "\n--\nSi prefiere no recibir estos avisos por correo electrónico, responda a este mensaje con la palabra "
    "BAJA y dejaremos de enviárselos por este medio."
)
OPT_OUT_EMAIL_EN = (
    "\n--\nIf you prefer not to receive these notices by email, reply to this message with the word STOP and we "
    "will no longer send them to you this way."
)


def email_es(opening: str, closing: str, total_label: str = "Total pendiente de pago") -> str:
    return (
        GREETING_ES
        + opening
        + "\n\n"
        + LINES_ES
        + "\n"
        + total_label
        + ": {{ total_texto }}\n"
        + LINK_ES
        + "\n"
        + closing
        + "\n\n"
        + SIGNATURE_ES
        + OPT_OUT_EMAIL_ES
    )


def email_en(opening: str, closing: str, total_label: str = "Total due") -> str:
    return (
        GREETING_EN
        + opening
        + "\n\n"
        + LINES_EN
        + "\n"
        + total_label
        + ": {{ total_texto }}\n"
        + LINK_EN
        + "\n"
        + closing
        + "\n\n"
        + SIGNATURE_EN
        + OPT_OUT_EMAIL_EN
    )


# --- the templates ---------------------------------------------------------------------------

TEMPLATES = [
    {
        "code": "recordatorio-previo",
        "name": "Recordatorio previo al vencimiento",
        "channel": "email",
        "tone": "courteous",
        "es": (
            "Recordatorio: {% if " + ONE + " %}su factura {{ facturas.0.numero }} vence pronto"
            "{% else %}{{ facturas|length }} facturas vencen pronto{% endif %} – {{ empresa }}",
            email_es(
                "Reciba un cordial saludo. Le enviamos este recordatorio para que pueda programar con tiempo el "
                "pago de {% if " + ONE + " %}la siguiente factura{% else %}las siguientes facturas{% endif %} "
                "de {{ cliente.razon_social }}:",
                "Si ya realizó o programó el pago, le agradecemos su puntualidad y puede ignorar este mensaje. "
                "Si tiene alguna duda sobre {% if " + ONE + " %}la factura{% else %}las facturas{% endif %}, o "
                "si algo no funcionó como esperaba con nuestros productos o servicios, díganoslo: con gusto lo "
                "resolvemos antes de la fecha de vencimiento.",
                total_label="Total por pagar",
            ),
        ),
        "en": (
            "Reminder: {% if " + ONE + " %}invoice {{ facturas.0.numero }} is due soon"
            "{% else %}{{ facturas|length }} invoices are due soon{% endif %} – {{ empresa }}",
            email_en(
                "We hope all is well. This is a friendly reminder so that you can schedule the payment of "
                "{% if " + ONE + " %}the following invoice{% else %}the following invoices{% endif %} "
                "for {{ cliente.razon_social }} in good time:",
                "If you have already paid or scheduled the payment, thank you, and please disregard this "
                "message. If you have any question about {% if " + ONE + " %}the invoice{% else %}the "
                "invoices{% endif %}, or if anything with our products or services did not work as expected, "
                "let us know and we will gladly sort it out before the due date.",
            ),
        ),
    },
    {
        "code": "aviso-vencimiento",
        "name": "Aviso de vencimiento",
        "channel": "email",
        "tone": "courteous",
        "es": (
            "Aviso de vencimiento – {{ cliente }}",
            email_es(
                "Le informamos que {% if " + ONE + " %}la siguiente factura llegó a su fecha de vencimiento y en "
                "nuestros registros aparece pendiente de pago{% else %}las siguientes facturas llegaron a su "
                "fecha de vencimiento y en nuestros registros aparecen pendientes de pago{% endif %}:",
                "Es posible que su pago ya esté en camino; en ese caso, le agradeceremos enviarnos el "
                "comprobante para aplicarlo a su cuenta. Si aún no lo ha realizado, le pedimos amablemente "
                "programarlo en los próximos días.\n\n"
                "Si existe algún inconveniente con {% if " + ONE + " %}la factura{% else %}las facturas"
                "{% endif %}, con el producto o con el servicio, por favor háganoslo saber: queremos "
                "resolverlo cuanto antes.",
            ),
        ),
        "en": (
            "Payment due notice – {{ cliente }}",
            email_en(
                "We would like to let you know that {% if " + ONE + " %}the following invoice has reached its "
                "due date and is still shown as unpaid{% else %}the following invoices have reached their due "
                "date and are still shown as unpaid{% endif %} in our records:",
                "Your payment may already be on its way; if so, we would appreciate it if you could send us the "
                "remittance advice so we can apply it to your account. If you have not paid yet, we kindly ask "
                "you to schedule the payment within the next few days.\n\n"
                "If there is any issue with {% if " + ONE + " %}the invoice{% else %}the invoices{% endif %}, "
                "the product or the service, please tell us: we want to resolve it as soon as possible.",
            ),
        ),
    },
    {
        "code": "seguimiento-vencido",
        "name": "Primer seguimiento de saldo vencido",
        "channel": "email",
        "tone": "courteous",
        "es": (
            "Seguimiento de saldo vencido – {{ cliente }}",
            email_es(
                "Le damos seguimiento a nuestro aviso anterior. A la fecha, {% if " + ONE + " %}la siguiente "
                "factura presenta{% else %}las siguientes facturas presentan{% endif %} saldo vencido:",
                "Entendemos que pueden presentarse imprevistos. Le agradeceremos ponerse al corriente a la "
                "brevedad o, si no le es posible, responder a este correo para acordar una fecha de pago; si lo "
                "necesita, podemos revisar juntos un convenio de pago.\n\n"
                "Si ya realizó el pago, le pedimos enviarnos el comprobante para actualizar su estado de cuenta.",
            ),
        ),
        "en": (
            "Follow-up on your overdue balance – {{ cliente }}",
            email_en(
                "We are following up on our previous notice. As of today, {% if " + ONE + " %}the following "
                "invoice is{% else %}the following invoices are{% endif %} past due:",
                "We understand that unexpected things happen. We would appreciate it if you could bring your "
                "account up to date as soon as possible or, if that is not possible, reply to this email so we "
                "can agree on a payment date; if needed, we can work out a payment plan together.\n\n"
                "If you have already paid, please send us the remittance advice so we can update your statement.",
            ),
        ),
    },
    {
        "code": "seguimiento-sms",
        "name": "SMS de seguimiento",
        "channel": "sms",
        "tone": "firm",
        "es": (
            "",
            "{{ empresa }}: {{ cliente }} tiene un saldo vencido de {{ total_texto }}"
            "{% if facturas|length <= 3 %} ({% for f in facturas %}{{ f.numero }} {{ f.saldo }} venc. "
            '{{ f.vencimiento|date:"d/m/y" }}, {{ f.dias_vencida }} día{{ f.dias_vencida|pluralize }}'
            "{% if not forloop.last %}; {% endif %}{% endfor %})"
            "{% else %} en {{ facturas|length }} facturas, la más antigua con {{ dias_max_vencida }} días de "
            "atraso{% endif %}. Le pedimos ponerse al corriente a la brevedad.\n"
            "{% if enlace_pago %}Pague en línea: {{ enlace_pago }}\n{% endif %}"
            "Dudas o convenio de pago: {{ gestor.nombre }}{% if gestor.telefono %}, {{ gestor.telefono }}"
            "{% endif %}. Responda BAJA para no recibir SMS.",
        ),
        "en": (
            "",
            "{{ empresa }}: {{ cliente }} has an overdue balance of {{ total_texto }}"
            "{% if facturas|length <= 3 %} ({% for f in facturas %}{{ f.numero }} {{ f.saldo }} due "
            '{{ f.vencimiento|date:"m/d/y" }}, {{ f.dias_vencida }} day{{ f.dias_vencida|pluralize }} '
            "late{% if not forloop.last %}; {% endif %}{% endfor %})"
            "{% else %} on {{ facturas|length }} invoices, the oldest {{ dias_max_vencida }} days late{% endif %}. "
            "Please bring it up to date as soon as possible.\n"
            "{% if enlace_pago %}Pay online: {{ enlace_pago }}\n{% endif %}"
            "Questions or a payment plan: {{ gestor.nombre }}{% if gestor.telefono %}, {{ gestor.telefono }}"
            "{% endif %}. Reply STOP to opt out of texts.",
        ),
    },
    {
        "code": "seguimiento-whatsapp",
        "name": "WhatsApp de seguimiento (plantilla aprobada)",
        "channel": "whatsapp",
        "tone": "firm",
        "es": (
            "",
            "Hola, {{ contacto|default:cliente }}. Le escribe {{ gestor.nombre }}, de {{ empresa }}.\n\n"
            "Le recordamos que la cuenta de {{ cliente }} tiene un saldo pendiente de {{ total_texto }}:\n"
            "{% if facturas|length <= 5 %}\n"
            "{% for f in facturas %}\n"
            "• Factura {{ f.numero }}: {{ f.saldo }}, {% if f.dias_vencida %}venció el {{ f.vencimiento }} "
            "({{ f.dias_vencida }} día{{ f.dias_vencida|pluralize }} de atraso){% elif f.dias_para_vencer %}vence "
            "el {{ f.vencimiento }}{% else %}vence hoy{% endif %}\n"
            "{% endfor %}\n"
            "{% else %}\n"
            "• {{ facturas|length }} facturas{% if dias_max_vencida %}; la más antigua tiene {{ dias_max_vencida }} "
            "días de atraso{% endif %}\n"
            "{% endif %}\n"
            "\nLe pedimos realizar su pago a la brevedad o responder a este mensaje para acordar una fecha de "
            "pago.{% if enlace_pago %} También puede pagar en línea: {{ enlace_pago }}{% endif %}\n\n"
            "Si ya pagó, por favor envíenos su comprobante por este medio. Responda BAJA si no desea recibir más "
            "mensajes por WhatsApp.",
        ),
        "en": (
            "",
            "Hello {{ contacto|default:cliente }}, this is {{ gestor.nombre }} from {{ empresa }}.\n\n"
            "This is a reminder that the account of {{ cliente }} has an outstanding balance of "
            "{{ total_texto }}:\n"
            "{% if facturas|length <= 5 %}\n"
            "{% for f in facturas %}\n"
            "• Invoice {{ f.numero }}: {{ f.saldo }}, {% if f.dias_vencida %}was due {{ f.vencimiento }} "
            "({{ f.dias_vencida }} day{{ f.dias_vencida|pluralize }} overdue){% elif f.dias_para_vencer %}due "
            "{{ f.vencimiento }}{% else %}due today{% endif %}\n"
            "{% endfor %}\n"
            "{% else %}\n"
            "• {{ facturas|length }} invoices{% if dias_max_vencida %}; the oldest is {{ dias_max_vencida }} days "
            "overdue{% endif %}\n"
            "{% endif %}\n"
            "\nPlease make your payment as soon as possible or reply to this message to agree on a payment date."
            "{% if enlace_pago %} You can also pay online: {{ enlace_pago }}{% endif %}\n\n"
            "If you have already paid, please send us the receipt here. Reply STOP if you no longer wish to "
            "receive WhatsApp messages from us.",
        ),
    },
    {
        "code": "aviso-firme",
        "name": "Aviso firme de saldo vencido",
        "channel": "email",
        "tone": "firm",
        "es": (
            "Saldo vencido: le pedimos regularizar su cuenta – {{ cliente }}",
            email_es(
                "Pese a nuestros recordatorios anteriores, a la fecha no hemos recibido el pago de "
                "{% if " + ONE + " %}la siguiente factura{% else %}las siguientes facturas{% endif %} de "
                "{{ cliente.razon_social }}:",
                "Le pedimos liquidar este saldo en un plazo máximo de cinco días hábiles a partir de la "
                "recepción de este correo. Si no le es posible cubrirlo completo, comuníquese con "
                "{{ gestor.nombre }} dentro de ese mismo plazo para acordar un convenio de pago con fechas "
                "concretas.\n\n"
                "Mantener su cuenta al corriente nos permite seguir ofreciéndole sus condiciones de crédito "
                "actuales. Si ya realizó el pago, le agradeceremos enviarnos el comprobante para aplicarlo de "
                "inmediato.",
            ),
        ),
        "en": (
            "Overdue balance: please bring your account up to date – {{ cliente }}",
            email_en(
                "Despite our previous reminders, we have not yet received payment of "
                "{% if " + ONE + " %}the following invoice{% else %}the following invoices{% endif %} for "
                "{{ cliente.razon_social }}:",
                "We ask you to settle this balance within five business days of receiving this email. If you "
                "cannot pay it in full, please contact {{ gestor.nombre }} within the same period to agree on a "
                "payment plan with specific dates.\n\n"
                "Keeping your account up to date allows us to continue offering you your current credit terms. "
                "If you have already paid, please send us the remittance advice so we can apply it right away.",
            ),
        ),
    },
    {
        "code": "ultimo-aviso",
        "name": "Último aviso por correo",
        "channel": "email",
        "tone": "final",
        "es": (
            "Último aviso: saldo vencido de {{ cliente }}",
            email_es(
                "Nos ponemos en contacto con usted por última vez antes de cambiar la forma de gestionar su "
                "cuenta. A pesar de nuestros avisos anteriores, {% if " + ONE + " %}la siguiente factura sigue"
                "{% else %}las siguientes facturas siguen{% endif %} pendiente{{ facturas|length|pluralize }} "
                "de pago:",
                "Valoramos la relación con {{ cliente }} y preferimos encontrar juntos una solución. Por ello le "
                "pedimos liquidar el saldo o comunicarse con nosotros dentro de los próximos diez días naturales "
                "para acordar un convenio de pago (pagos parciales o una nueva fecha).\n\n"
                "De no recibir el pago ni tener noticias suyas en ese plazo, y conforme a nuestras condiciones "
                "comerciales:\n"
                "- su línea de crédito y los beneficios de su cuenta (plazos de pago y condiciones preferentes) "
                "podrán suspenderse hasta que la cuenta se ponga al corriente, y\n"
                "- la gestión del saldo podrá pasar a una agencia de cobranza externa o a nuestro departamento "
                "jurídico.\n\n"
                "Le reiteramos nuestra disposición para dialogar. Si ya realizó el pago o tiene alguna aclaración "
                "sobre {% if " + ONE + " %}la factura{% else %}las facturas{% endif %}, por favor respóndanos a "
                "la brevedad para revisarlo.",
            ),
        ),
        "en": (
            "Final notice: overdue balance of {{ cliente }}",
            email_en(
                "We are contacting you for the last time before changing the way your account is handled. "
                "Despite our previous notices, {% if " + ONE + " %}the following invoice remains{% else %}the "
                "following invoices remain{% endif %} unpaid:",
                "We value our relationship with {{ cliente }} and would rather find a solution together. We "
                "therefore ask you to settle the balance, or to contact us within the next ten calendar days to "
                "agree on a payment plan (instalments or a new date).\n\n"
                "If we receive neither payment nor word from you within that period, and in accordance with our "
                "terms of trade:\n"
                "- your credit line and the benefits of your account (payment terms and preferential conditions) "
                "may be suspended until the account is brought up to date, and\n"
                "- the collection of the balance may be handed over to an external collection agency or to our "
                "legal department.\n\n"
                "We remain open to talking this through. If you have already paid or have a query about "
                "{% if " + ONE + " %}the invoice{% else %}the invoices{% endif %}, please reply as soon as "
                "possible so we can look into it.",
            ),
        ),
    },
    {
        "code": "carta-ultimo-aviso",
        "name": "Carta de último aviso",
        "channel": "letter",
        "tone": "final",
        "es": (
            "Último aviso de saldo vencido",
            GREETING_ES + "Por medio de la presente le informamos que, de acuerdo con nuestros registros, "
            "{{ cliente.razon_social }}{% if cliente.rfc %} (RFC/NIF {{ cliente.rfc }}){% endif %} mantiene con "
            "{{ empresa }} el siguiente saldo vencido:\n\n"
            + LINES_ES
            + "\nTotal pendiente de pago: {{ total_texto }}\n\n"
            "Hemos intentado comunicarnos con ustedes en varias ocasiones para resolver esta situación. Le "
            "solicitamos atentamente liquidar el saldo, o ponerse en contacto con nosotros para acordar un "
            "convenio de pago, dentro de los diez días naturales siguientes a la recepción de esta carta.\n\n"
            "De no recibir el pago ni una propuesta en ese plazo, y conforme a las condiciones comerciales "
            "pactadas, la línea de crédito y los beneficios de su cuenta podrán suspenderse, y la gestión del "
            "saldo podrá turnarse a una agencia de cobranza externa o a nuestro departamento jurídico. Nuestra "
            "preferencia sigue siendo llegar a un acuerdo directo con ustedes.\n"
            + LINK_ES
            + "\nSi ya efectuó el pago, le rogamos hacer caso omiso de esta carta y enviarnos el comprobante para "
            "actualizar su cuenta.\n\n" + SIGNATURE_ES,
        ),
        "en": (
            "Final notice of overdue balance",
            GREETING_EN + "We are writing to inform you that, according to our records, {{ cliente.razon_social }}"
            "{% if cliente.rfc %} (tax ID {{ cliente.rfc }}){% endif %} owes {{ empresa }} the following overdue "
            "balance:\n\n" + LINES_EN + "\nTotal due: {{ total_texto }}\n\n"
            "We have tried to reach you on several occasions to resolve this matter. We kindly ask you to settle "
            "the balance, or to contact us to agree on a payment plan, within ten calendar days of receiving "
            "this letter.\n\n"
            "If we receive neither payment nor a proposal within that period, and in accordance with the agreed "
            "terms of trade, your credit line and the benefits of your account may be suspended, and the "
            "collection of the balance may be handed over to an external collection agency or to our legal "
            "department. Our preference remains to reach a direct agreement with you.\n"
            + LINK_EN
            + "\nIf you have already paid, please disregard this letter and send us the remittance advice so we "
            "can update your account.\n\n" + SIGNATURE_EN,
        ),
    },
]

# --- the ladders -----------------------------------------------------------------------------

NO_MINIMUM = Decimal("0.00")


def step(offset, channel, name, *, template=None, tone="courteous", minimum=NO_MINIMUM, approval=False):
    return {
        "offset_days": offset,
        "channel": channel,
        "name": name,
        "template": template,
        "tone": tone,
        "min_overdue_amount": minimum,
        "requires_approval": approval,
    }


LADDERS = [
    {
        "segment": "cuenta-clave",
        "name": "Escalera de cuentas clave",
        "description": (
            "Clientes estratégicos que casi siempre pagan (atraso casual): recordatorio cortés antes del "
            "vencimiento y trato personal temprano del gestor para conocer el motivo del atraso, sin presión. "
            "El gerente revisa la cuenta antes de cualquier medida firme y la carta de último aviso requiere "
            "aprobación."
        ),
        "tolerance": Decimal("10.00"),
        "steps": [
            step(-5, "email", "Recordatorio previo al vencimiento", template="recordatorio-previo"),
            step(3, "call", "Llamada personal del gestor: conocer el motivo del atraso"),
            step(10, "email", "Correo de seguimiento del saldo vencido", template="seguimiento-vencido"),
            step(20, "call", "Segunda llamada: acordar fecha de pago o convenio", tone="firm"),
            step(35, "review", "Revisión del gerente: relación y siguiente paso", tone="firm", approval=True),
            step(60, "letter", "Carta de último aviso", template="carta-ultimo-aviso", tone="final", approval=True),
        ],
    },
    {
        "segment": "regular",
        "name": "Escalera regular",
        "description": (
            "Clientes habituales (moroso con intención): seguimiento regular en fechas fijas; el tono sube de "
            "forma gradual y cambia de canal (correo, SMS, llamada, aviso firme, último aviso) hasta la revisión "
            "del gerente, que decide entre convenio, agencia o vía judicial."
        ),
        "tolerance": Decimal("10.00"),
        "steps": [
            step(-3, "email", "Recordatorio previo al vencimiento", template="recordatorio-previo"),
            step(1, "email", "Aviso de vencimiento", template="aviso-vencimiento"),
            step(7, "sms", "SMS de seguimiento", template="seguimiento-sms", tone="firm"),
            step(15, "call", "Llamada de seguimiento: acordar fecha de pago", tone="firm"),
            step(30, "email", "Correo de aviso firme", template="aviso-firme", tone="firm"),
            step(45, "email", "Correo de último aviso", template="ultimo-aviso", tone="final"),
            step(60, "review", "Revisión del gerente: convenio, agencia o vía judicial", tone="final", approval=True),
        ],
    },
    {
        "segment": "esporadico",
        "name": "Escalera de clientes esporádicos",
        "description": (
            "Ventas puntuales, sin relación de largo plazo que proteger: escalamiento más rápido y firme. A los "
            "25 días, envío a agencia de cobranza con aprobación, si el saldo lo justifica."
        ),
        "tolerance": Decimal("10.00"),
        "steps": [
            step(-2, "email", "Recordatorio previo al vencimiento", template="recordatorio-previo"),
            step(1, "email", "Aviso de vencimiento", template="aviso-vencimiento"),
            step(4, "sms", "SMS de seguimiento", template="seguimiento-sms", tone="firm"),
            step(8, "call", "Llamada de cobranza: fecha de pago firme", tone="firm"),
            step(15, "email", "Correo de último aviso", template="ultimo-aviso", tone="final"),
            step(
                25,
                "agency",
                "Envío a agencia de cobranza",
                tone="final",
                minimum=Decimal("1000.00"),
                approval=True,
            ),
        ],
    },
    {
        "segment": "alto-riesgo",
        "name": "Escalera de alto riesgo",
        "description": (
            "Atrasos crónicos o negligentes: seguimiento estrecho y escalamiento rápido. Recordatorio previo, "
            "WhatsApp el día del vencimiento, llamadas tempranas (también al aval, si lo hay), aviso firme, "
            "carta de último aviso y envío a vía judicial con aprobación cuando el saldo lo justifica."
        ),
        "tolerance": Decimal("10.00"),
        "steps": [
            step(-5, "email", "Recordatorio previo al vencimiento", template="recordatorio-previo"),
            step(0, "whatsapp", "WhatsApp el día del vencimiento", template="seguimiento-whatsapp", tone="firm"),
            step(3, "call", "Llamada de cobranza: fecha de pago firme", tone="firm"),
            step(7, "email", "Correo de aviso firme", template="aviso-firme", tone="firm"),
            step(12, "call", "Segunda llamada: convenio de pago o contacto con el aval", tone="final"),
            step(20, "letter", "Carta de último aviso", template="carta-ultimo-aviso", tone="final"),
            step(
                30,
                "legal",
                "Envío a vía judicial",
                tone="final",
                minimum=Decimal("5000.00"),
                approval=True,
            ),
        ],
    },
]


def forwards(apps, schema_editor):
    MessageTemplate = apps.get_model("cobranza", "MessageTemplate")
    MessageTemplateText = apps.get_model("cobranza", "MessageTemplateText")
    Policy = apps.get_model("cobranza", "Policy")
    PolicyStep = apps.get_model("cobranza", "PolicyStep")
    Segment = apps.get_model("accounts", "Segment")

    templates = {}
    for spec in TEMPLATES:
        template, _ = MessageTemplate.objects.update_or_create(
            code=spec["code"],
            defaults={"name": spec["name"], "channel": spec["channel"], "tone": spec["tone"], "is_active": True},
        )
        for language in ("es", "en"):
            subject, body = spec[language]
            MessageTemplateText.objects.update_or_create(
                template=template, language=language, defaults={"subject": subject, "body": body}
            )
        templates[spec["code"]] = template

    for ladder in LADDERS:
        segment = Segment.objects.filter(code=ladder["segment"]).first()
        if segment is None:  # a segment removed by the user keeps no default ladder
            continue
        policy, _ = Policy.objects.update_or_create(
            segment=segment,
            defaults={
                "name": ladder["name"],
                "description": ladder["description"],
                "tolerance": ladder["tolerance"],
                "is_active": True,
            },
        )
        for position, spec in enumerate(ladder["steps"], start=1):
            fields = dict(spec)
            code = fields.pop("template")
            fields["template"] = templates[code] if code else None
            fields["is_active"] = True
            PolicyStep.objects.update_or_create(policy=policy, position=position, defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("cobranza", "0002_contact_rule_presets"), ("accounts", "0003_constraint_messages")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
