"""Several web and worker containers (docs/scaling.md): behind the scale override's proxy the
client's address is the forwarded one, for the login lock-out and the portal's limit alike, and
an import job delivered to two workers runs once."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import reverse

from accounts.utils import client_ip
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import ImportJob
from tests.factories import PASSWORD

PROXY = "172.18.0.5"  # the nginx container: REMOTE_ADDR of every request behind it


def _request(**meta):
    return RequestFactory().get("/", **meta)


def test_without_a_trusted_proxy_the_address_is_remote_addr_and_the_header_is_ignored(settings):
    settings.AXES_IPWARE_PROXY_COUNT = None
    assert client_ip(_request(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "203.0.113.9"
    assert client_ip(_request(REMOTE_ADDR="")) is None  # a Unix-socket proxy: no address


def test_behind_one_proxy_the_address_is_the_one_it_forwarded_and_forged_entries_are_ignored(settings):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    assert client_ip(_request(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")) == "203.0.113.9"
    # A client that sends the header itself: the proxy's entry is the last one.
    forged = _request(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.9")
    assert client_ip(forged) == "203.0.113.9"
    assert client_ip(_request(REMOTE_ADDR=PROXY)) == PROXY  # no header: the peer


@pytest.mark.django_db
def test_behind_the_proxy_one_persons_wrong_passwords_do_not_lock_the_user_out_for_everyone(settings, gestora):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    login = reverse("login")

    def attempt(password, address):
        return HttpClient().post(
            login,
            {"username": "gestora", "password": password},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=address,
        )

    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt("contraseña-equivocada", "198.51.100.7")
    assert attempt(PASSWORD, "198.51.100.7").status_code == 429  # the guesser's address is locked
    assert attempt(PASSWORD, "203.0.113.9").status_code == 302  # the user, from her office, is not


@pytest.mark.django_db
def test_an_import_job_handed_to_two_workers_runs_once(settings, tmp_path, gerente):
    settings.MEDIA_ROOT = tmp_path
    job = imports.job_create(
        by=gerente,
        kind="invoices",
        file_name="f.csv",
        data=b"Folio,RFC,Emision,Importe\n",
        options=Options(kind="invoices", columns={"number": "Folio"}),
        dry_run=True,
    )
    # Another worker claimed it a moment ago and is running it.
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    assert imports.run_import_job(job.pk) == ImportJob.Status.RUNNING
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and job.finished_at is None
    # A pending job is claimed and run by the one delivery that gets it.
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.PENDING)
    assert imports.run_import_job(job.pk) != ImportJob.Status.PENDING
    assert imports.run_import_job(job.pk) == ImportJob.objects.get(pk=job.pk).status


def test_the_lock_out_reads_the_client_address_through_the_projects_function():
    assert settings.AXES_CLIENT_IP_CALLABLE == "accounts.utils.client_ip"
