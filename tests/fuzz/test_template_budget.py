"""Hypothesis property of the message-template budget: no template under
the size limit costs more than a set time, whatever it nests, loops over or filters, at save
(validation) and at send (a render against a client with many invoices). A template either
renders within the budget or is refused with a TemplateRenderError; nothing else.

Pure (no database); FUZZ_PROPERTIES raises the number of examples for ``make fuzz``.
"""

from __future__ import annotations

import contextlib
import os
import time

from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobranza.engine import messaging

EXAMPLES = int(os.environ.get("FUZZ_PROPERTIES", "0"))
BUDGET_SECONDS = 0.3
# The budget, plus one unchecked step (a filter call or one loop iteration's nodes) and the
# validation's own sample render.
ALLOWED_SECONDS = 1.5

SEQUENCES = ["facturas", "total", "facturas|slice:':9'", '"0123456789"', "cliente", "enlace_pago", "f", "t"]
VALUES = ["cliente", "enlace_pago", "f", "t", "total_texto", "'xyz'", "facturas", "x"]
FILTERS = [
    "",
    "|join:'%s'" % ("-" * 300),
    "|add:x",
    "|add:enlace_pago",
    "|wordwrap:3",
    "|upper",
    "|slice:'::-1'",
    "|truncatechars:100000",
    "|default:'-'",
    "|length",
    "|money",
]


def _filters():
    return st.lists(st.sampled_from(FILTERS), max_size=6).map("".join)


def _expression():
    return st.builds(lambda v, f: v + f, st.sampled_from(VALUES), _filters())


def _template():
    leaf = st.one_of(
        st.sampled_from(["x", "Saldo ", "\n", "{{ forloop.counter }}"]),
        _expression().map(lambda e: f"{{{{ {e} }}}}"),
    )

    def nest(children):
        body = st.lists(children, min_size=1, max_size=4).map("".join)
        return st.one_of(
            st.builds(lambda s, b: f"{{% for f in {s} %}}{b}{{% endfor %}}", st.sampled_from(SEQUENCES), body),
            st.builds(lambda e, b: f"{{% with x={e} %}}{b}{{% endwith %}}", _expression(), body),
            st.builds(lambda e, b: f"{{% if {e} %}}{b}{{% endif %}}", _expression(), body),
            st.builds(
                lambda f, b: "{{% filter {} %}}{}{{% endfilter %}}".format(f or "upper", b),
                _filters().map(lambda f: f.lstrip("|")),
                body,
            ),
        )

    return st.recursive(leaf, nest, max_leaves=40).filter(lambda s: len(s) <= messaging.TEMPLATE_MAX_CHARS)


def _big_context():
    context = messaging.sample_context("es")
    context["facturas"] = [context["facturas"][i % 3] for i in range(800)]
    return context


BIG = _big_context()


@settings(
    max_examples=EXAMPLES or 150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(body=_template())
def test_no_template_under_the_size_limit_costs_more_than_the_budget(body):
    from django.test import override_settings

    with override_settings(MESSAGE_RENDER_SECONDS=BUDGET_SECONDS):
        started = time.monotonic()
        with contextlib.suppress(ValidationError):
            messaging.validate_template_text(channel="email", subject="Aviso", body=body)
        assert time.monotonic() - started < ALLOWED_SECONDS, body

        started = time.monotonic()
        try:
            rendered = messaging.render_text(channel="email", subject="Aviso", body=body, language="es", context=BIG)
        except messaging.TemplateRenderError:
            rendered = None
        assert time.monotonic() - started < ALLOWED_SECONDS, body
        if rendered is not None:
            assert len(rendered.body) <= messaging.OUTPUT_MAX_CHARS
