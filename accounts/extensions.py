"""Hooks through which other apps add to the ledger's pages without ``accounts`` importing them.

``cobranza`` may import ``accounts``, never the reverse; yet the client page must show the
client's dunning state. An app registers a *client panel* in its ``AppConfig.ready``::

    register_client_panel(my_panel)   # my_panel(request, client) -> str (HTML) or ""

The client page renders every registered panel, in registration order. A panel must cost a
constant number of queries (the page's query count is asserted in the tests).
"""

from __future__ import annotations

from collections.abc import Callable

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
