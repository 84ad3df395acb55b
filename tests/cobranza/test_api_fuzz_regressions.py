"""Bugs the schemathesis run (tests/fuzz/test_api_schemathesis.py) found in the REST API,
each pinned by a plain test."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.models import Interaction
from cobranza.api.pagination import MAX_LIMIT
from tests.cobranza.test_api import api
from tests.factories import make_client

pytestmark = pytest.mark.django_db


def _schema(user) -> dict:
    return api(user).get(reverse("api:schema") + "?format=json").json()


def test_an_open_dispute_blank_resolution_is_allowed_by_the_schema(gerente, gestora):
    # Found: GET /api/v1/disputes/ answered "resolution": "" for open disputes, which the
    # schema's enum (credit_note, adjustment, rejected) did not allow.
    from tests.cobranza.test_api import build_client_data

    data = build_client_data(by=gerente, collector=gestora)
    body = api(gerente).get(reverse("api:dispute-detail", kwargs={"pk": data["dispute"].pk})).json()
    assert body["resolution"] == ""
    resolution = _schema(gerente)["components"]["schemas"]["Dispute"]["properties"]["resolution"]
    allowed = [
        value
        for choice in resolution.get("oneOf", [resolution])
        for value in _schema(gerente)["components"]["schemas"][choice["$ref"].rsplit("/", 1)[1]]["enum"]
    ]
    assert "" in allowed and "credit_note" in allowed


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=null", "limit"),
        ("limit=-610", "limit"),
        ("limit=0", "limit"),
        (f"limit={MAX_LIMIT + 1}", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("offset=null", "offset"),
        ("offset=-1", "offset"),
        ("offset=1e3", "offset"),
    ],
)
def test_a_bad_limit_or_offset_is_a_field_error_not_the_first_page(gerente, query, field):
    # Found: DRF replaced an unreadable or negative limit/offset with its default and answered
    # 200 with the first page; an unbounded limit could reach PostgreSQL beyond bigint.
    response = api(gerente).get(reverse("api:client-list") + "?" + query)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert isinstance(response.json()[field][0], str)


def test_a_good_limit_and_offset_still_page(gerente, gestora):
    for _ in range(3):
        make_client(by=gerente, collector=gestora)
    response = api(gerente).get(reverse("api:client-list") + "?limit=2&offset=1&ordering=id")
    assert response.status_code == 200
    assert response.json()["count"] == 3 and len(response.json()["results"]) == 2


def test_the_schema_states_the_paging_bounds_and_the_error_answers(gerente):
    schema = _schema(gerente)
    operation = schema["paths"]["/api/v1/clients/"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == MAX_LIMIT
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    create = schema["paths"]["/api/v1/clients/"]["post"]
    assert {"201", "400", "409", "422"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    assert "404" in schema["paths"]["/api/v1/clients/{id}/"]["get"]["responses"]


def test_the_api_not_found_view_answers_json_not_the_sites_html_page(rf):
    # Found: /api/v1/clients/<not a number>/ matches no route and got the site's HTML 404 page,
    # which the schema's application/json does not allow. The view is ready for the API's URLconf
    # (proposed as its last pattern); until it is mounted, it is tested directly.
    from cobranza.api.views import api_not_found

    response = api_not_found(rf.get("/api/v1/clients/abc/"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)) == {"detail"}


@pytest.mark.parametrize("occurred_at", ["0325-05-16T14:14:55-06:00", "1645-08-24T11:58:19Z", "1969-12-31T23:59:59Z"])
def test_a_contact_logged_before_1970_is_a_field_error(gerente, gestora, occurred_at):
    # Found: POST /api/v1/interactions/ stored the year 325, then answered it in Mexico City's
    # pre-1922 local mean time ("0325-05-16T14:14:55-06:36:36"), not an RFC 3339 date-time.
    client = make_client(by=gerente, collector=gestora)
    before = Interaction.objects.filter(client=client).count()
    response = api(gestora).post(
        reverse("api:interaction-list"),
        {"client": client.pk, "kind": "note", "summary": "Nota", "occurred_at": occurred_at},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["occurred_at"]
    assert Interaction.objects.filter(client=client).count() == before


def test_a_contact_logged_in_1970_or_later_is_accepted(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    response = api(gestora).post(
        reverse("api:interaction-list"),
        {"client": client.pk, "kind": "note", "summary": "Nota", "occurred_at": "1999-03-01T10:00:00-06:00"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["occurred_at"].startswith("1999-03-01T10:00:00-06:00")
