"""The ``select_field`` tag renders a choice field as Django's widget does (same HTML, parsed),
for every filter of the client list, with and without a chosen value."""

from __future__ import annotations

import pytest
from django import forms
from django.template import Context, Template
from django.test.html import parse_html

from accounts.forms import ClientFilterForm
from tests.factories import segment as get_segment

pytestmark = pytest.mark.django_db

TAG = Template("{% load morosos %}{% select_field field %}")


def _both(bound_field):
    ours = TAG.render(Context({"field": bound_field}))
    return parse_html(ours), parse_html(bound_field.as_widget())


@pytest.mark.parametrize(
    "data",
    [{}, {"status": "active", "bucket": "31_60", "collector": "none"}, {"bucket": "bad", "segment": "999"}],
)
def test_the_client_filters_render_as_django_renders_them(data):
    segment = get_segment()
    form = ClientFilterForm(data | ({"segment": str(segment.pk)} if not data else {}), collector_options=[("7", "Ana")])
    names = [f.name for f in form if isinstance(f.field.widget, forms.Select)]
    assert names == ["segment", "collector", "status", "bucket"]
    for name in names:
        ours, django = _both(form[name])
        assert ours == django, name
    if not data:
        assert f'<option value="{segment.pk}" selected>' in TAG.render(Context({"field": form["segment"]}))


def test_required_fields_and_grouped_choices_keep_djangos_rendering(db):
    class F(forms.Form):
        kind = forms.ChoiceField(choices=[("a", "A"), ("b", "<B & co>")])
        grouped = forms.ChoiceField(choices=[("Grupo", [("x", "X"), ("y", "Y")])])
        many = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")])

    form = F({"kind": "b", "grouped": "y", "many": ["a", "b"]})
    for name in ("kind", "grouped", "many"):
        ours, django = _both(form[name])
        assert ours == django, name
    assert "&lt;B &amp; co&gt;" in TAG.render(Context({"field": form["kind"]}))
