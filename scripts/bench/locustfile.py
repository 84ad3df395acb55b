"""Locust scenario of the HTTP benchmark (runs in its own virtualenv, .venv-locust: locust and
Django do not mix in one process). Each simulated user logs in as a staff user through the
login form, then browses: worklist, client list, client pages of its portfolio and, for
managers, the dashboard. The users and their clients come from BENCH_LOCUST_USERS (JSON)."""

import itertools
import json
import os
import random
import re

from locust import HttpUser, between, task

SPEC = json.load(open(os.environ["BENCH_LOCUST_USERS"], encoding="utf-8"))  # noqa: SIM115
PASSWORD = SPEC["password"]
ACCOUNTS = itertools.cycle(SPEC["users"])
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Staff(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.account = next(ACCOUNTS)
        page = self.client.get("/cuenta/entrar/", name="login form")
        token = CSRF.search(page.text).group(1)
        r = self.client.post(
            "/cuenta/entrar/",
            {"username": self.account["username"], "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/"},
            headers={"Referer": self.host + "/cuenta/entrar/"},
            name="login",
            allow_redirects=False,
        )
        if r.status_code != 302:
            raise RuntimeError(f"login failed for {self.account['username']}: {r.status_code}")

    @task(4)
    def worklist(self):
        self.client.get("/cobranza/mi-cartera/", name="worklist")

    @task(3)
    def client_list(self):
        self.client.get("/clientes/", name="client list")

    @task(3)
    def client_page(self):
        self.client.get(f"/clientes/{random.choice(self.account['clients'])}/", name="client page")  # noqa: S311

    @task(1)
    def dashboard(self):
        if self.account["manager"]:
            self.client.get("/cobranza/tablero/", name="dashboard")
