"""Staff groups, default segments, and the database guard that keeps the timeline append-only."""

from django.db import migrations

GROUPS = {
    # Collectors work their own clients: contacts, payments, interactions.
    "Gestor de cobranza": [
        "view_client",
        "view_contact",
        "add_contact",
        "change_contact",
        "view_invoice",
        "view_payment",
        "add_payment",
        "view_interaction",
        "add_interaction",
        "view_segment",
        "view_businessgroup",
    ],
    # Managers see and work everything, and maintain clients and invoices.
    "Gerente": [
        "view_client",
        "add_client",
        "change_client",
        "view_contact",
        "add_contact",
        "change_contact",
        "view_invoice",
        "add_invoice",
        "change_invoice",
        "view_payment",
        "add_payment",
        "view_interaction",
        "add_interaction",
        "view_segment",
        "view_businessgroup",
        "add_businessgroup",
        "change_businessgroup",
    ],
}

SEGMENTS = [
    (
        "cuenta-clave",
        "Cuenta clave",
        4,
        "Clientes estratégicos por volumen y antigüedad: trato personal, recordatorios suaves y llamada temprana.",
    ),
    ("regular", "Regular", 2, "Clientes habituales con historial de pago aceptable: escalamiento estándar."),
    (
        "esporadico",
        "Esporádico",
        1,
        "Ventas puntuales: recordatorios más rápidos y firmes, sin relación de largo plazo que proteger.",
    ),
    (
        "alto-riesgo",
        "Alto riesgo",
        3,
        "Atrasos crónicos o negligentes: seguimiento estrecho, contacto con el aval y escalamiento rápido.",
    ),
]


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))
    admin_group, _ = Group.objects.get_or_create(name="Administrador")
    admin_group.permissions.set(Permission.objects.filter(content_type__app_label__in=["accounts", "cobranza", "auth"]))

    Segment = apps.get_model("accounts", "Segment")
    for position, (code, name, weight, description) in enumerate(SEGMENTS):
        Segment.objects.get_or_create(
            code=code,
            defaults={"name": name, "priority_weight": weight, "description": description, "position": position},
        )


APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION accounts_interaction_append_only() RETURNS trigger AS $$
BEGIN
    -- Only the ON DELETE SET NULL of a removed contact or staff user may touch a row.
    IF ROW(NEW.id, NEW.client_id, NEW.kind, NEW.direction, NEW.outcome, NEW.summary, NEW.body,
           NEW.occurred_at, NEW.next_action_on, NEW.corrects_id, NEW.created_at)
       IS DISTINCT FROM
       ROW(OLD.id, OLD.client_id, OLD.kind, OLD.direction, OLD.outcome, OLD.summary, OLD.body,
           OLD.occurred_at, OLD.next_action_on, OLD.corrects_id, OLD.created_at)
       OR (NEW.contact_id IS NOT NULL AND NEW.contact_id IS DISTINCT FROM OLD.contact_id)
       OR (NEW.author_id IS NOT NULL AND NEW.author_id IS DISTINCT FROM OLD.author_id) THEN
        RAISE EXCEPTION 'accounts_interaction is append-only: record a correction as a new entry';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_interaction_no_update
    BEFORE UPDATE ON accounts_interaction
    FOR EACH ROW EXECUTE FUNCTION accounts_interaction_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS accounts_interaction_no_update ON accounts_interaction;
DROP FUNCTION IF EXISTS accounts_interaction_append_only();
"""


def add_trigger(apps, schema_editor):
    schema_editor.execute(APPEND_ONLY_SQL)


def drop_trigger(apps, schema_editor):
    schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
