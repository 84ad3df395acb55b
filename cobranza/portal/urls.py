"""The debtor's self-service page (public, by signed token) and the staff actions on it."""

from django.urls import path, re_path

from cobranza.portal import views

app_name = "selfservice"
urlpatterns = [
    # Staff only (login + a role + the client's collector or a manager).
    path("revocar/<int:pk>/", views.revoke, name="revoke"),
    path("enlace/<int:pk>/enviar/", views.link_send, name="link_send"),
    path("propuesta/<int:pk>/aprobar/", views.proposal_approve, name="proposal_approve"),
    path("propuesta/<int:pk>/rechazar/", views.proposal_reject, name="proposal_reject"),
    # Public: the token is the credential.
    # The link in reminders has no trailing slash (public address + "/portal/" + token).
    re_path(r"^(?P<token>[^/]+)/?$", views.statement, name="statement"),
    path("<str:token>/estado-de-cuenta.pdf", views.statement_pdf, name="statement_pdf"),
    path("<str:token>/promesa/", views.promise, name="promise"),
    path("<str:token>/plan/", views.plan_request, name="plan_request"),
    path("<str:token>/problema/", views.report_problem, name="report_problem"),
]
