"""Hooks through which other apps add to the ledger's pages without ``accounts`` importing them.

``cobranza`` may import ``accounts``, never the reverse; yet the client page must show the
client's dunning state. An app registers a *client panel* in its ``AppConfig.ready``::

    register_client_panel(my_panel)   # my_panel(request, client) -> str (HTML) or ""

The client page renders every registered panel, in registration order. A panel must cost a
constant number of queries (the page's query count is asserted in the tests).
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

ClientPanel = Callable[..., str]
_client_panels: list[ClientPanel] = []


def register_client_panel(panel: ClientPanel) -> ClientPanel:
    if panel not in _client_panels:
        _client_panels.append(panel)
    return panel


def client_panels(request, client) -> list[SafeString]:
    """The HTML of every registered panel for this client (empty ones left out).
    Panels render their own templates, which escape what they show."""
    rendered = (panel(request, client) for panel in _client_panels)
    return [mark_safe(html) for html in rendered if html]  # noqa: S308 - rendered by Django templates


# --- demo data ----------------------------------------------------------------------------
# ``seed_demo`` builds the ledger; apps that add their own demo state (cobranza: disputes,
# promises, plans, profiles, today's reminders) register a step that runs after it:
#     register_demo_step(step)   # step(*, today, seed, stdout) -> str (a summary line) or ""

DemoStep = Callable[..., str]
_demo_steps: list[DemoStep] = []


def register_demo_step(step: DemoStep) -> DemoStep:
    if step not in _demo_steps:
        _demo_steps.append(step)
    return step


def demo_steps() -> list[DemoStep]:
    return list(_demo_steps)


# --- the "log an outcome" form ------------------------------------------------------------
# The ledger has a plain interaction form; an app with a richer one (cobranza: promise, plan
# or dispute in the same form) registers where the client page's button leads:
#     register_outcome_form(url_for)   # url_for(client) -> str

_outcome_form: list[Callable[..., str]] = []


def register_outcome_form(url_for: Callable[..., str]) -> None:
    _outcome_form[:] = [url_for]


def outcome_form_url(client) -> str:
    if _outcome_form:
        return _outcome_form[0](client)
    return reverse("interaction_create", args=[client.pk])
