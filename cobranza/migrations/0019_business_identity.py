"""The default message templates sign with the business's signature and show its legal footer
(docs/domain.md, "Who the debtor hears from").

Only texts still exactly as shipped by 0003 are changed: a text a manager edited is theirs and
is left alone. Emails and letters sign with ``{{ empresa.firma|default:empresa }}`` (the trade
name when there is no signature); emails end with ``{{ empresa.pie_legal }}`` after the opt-out line (letters
print the legal footer in their own layout). Reversible the same way.
"""

import importlib

from django.db import migrations

DEFAULTS = importlib.import_module("cobranza.migrations.0003_default_ladders")

# One variable on its line (a line of tags alone is dropped with its line break).
SIGNED_BY = "{{ empresa.firma|default:empresa }}\n"
LEGAL_FOOTER = "{% if empresa.pie_legal %}\n\n{{ empresa.pie_legal }}{% endif %}"


def _signed(signature: str) -> str:
    assert "{{ empresa }}\n" in signature
    return signature.replace("{{ empresa }}\n", SIGNED_BY, 1)


def new_text(channel: str, body: str) -> str:
    """The shipped ``body`` with the business's signature (and, for emails, its legal footer)."""
    for old in (DEFAULTS.SIGNATURE_ES, DEFAULTS.SIGNATURE_EN):
        body = body.replace(old, _signed(old))
    if channel == "email":
        body += LEGAL_FOOTER
    return body


def _pairs():
    """(code, language, channel, shipped body, new body) for every default text that changes."""
    for spec in DEFAULTS.TEMPLATES:
        for language in ("es", "en"):
            _subject, body = spec[language]
            updated = new_text(spec["channel"], body)
            if updated != body:
                yield spec["code"], language, body, updated


def _swap(apps, *, forward: bool) -> None:
    MessageTemplateText = apps.get_model("cobranza", "MessageTemplateText")
    for code, language, shipped, updated in _pairs():
        before, after = (shipped, updated) if forward else (updated, shipped)
        MessageTemplateText.objects.filter(template__code=code, language=language, body=before).update(body=after)


def forwards(apps, schema_editor):
    _swap(apps, forward=True)


def backwards(apps, schema_editor):
    _swap(apps, forward=False)


class Migration(migrations.Migration):
    dependencies = [
        ("cobranza", "0018_portal_limits"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
