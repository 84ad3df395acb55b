"""Hooks through which other apps add to the ledger's pages without ``accounts`` importing them.

``cobranza`` may import ``accounts``, never the reverse; yet the client page must show the
client's dunning state. An app registers a *client panel* in its ``AppConfig.ready``::

    register_client_panel(my_panel)                      # in the summary, always visible
    register_client_panel(my_panel, section="cobranza")  # in the "Cobranza" tab, loaded on demand
    # my_panel(request, client) -> str (HTML) or ""

The client page is a summary plus sections loaded when their tab is opened
(docs/domain.md#the-client-page); each place renders its panels in registration order. A panel must cost a
constant number of queries (the summary's and each section's query count are asserted in the
tests, and the summary's budget is small: keep summary panels to one query).
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

ClientPanel = Callable[..., str]
SUMMARY = "summary"
_client_panels: dict[str, list[ClientPanel]] = {}


def register_client_panel(panel: ClientPanel, *, section: str = SUMMARY) -> ClientPanel:
    panels = _client_panels.setdefault(section, [])
    if panel not in panels:
        panels.append(panel)
    return panel


def client_panels(request, client, *, section: str = SUMMARY) -> list[SafeString]:
    """The HTML of every panel registered for this place of the client page (empty ones left
    out). Panels render their own templates, which escape what they show."""
    rendered = (panel(request, client) for panel in _client_panels.get(section, []))
    return [mark_safe(html) for html in rendered if html]  # noqa: S308 - rendered by Django templates


# --- demo data ----------------------------------------------------------------------------
# ``seed_demo`` builds the ledger; apps that add their own demo state (cobranza: disputes,
# promises, plans, profiles, today's reminders) register a step that runs after it:
#     register_demo_step(step)   # step(*, today, seed, stdout, phases) -> str (a summary line) or ""
# ``phases`` (``accounts.demo.Phases``) times the step's parts for ``seed_demo -v 2``.

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
