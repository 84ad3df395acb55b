"""Dunning operations: what goes out, notices, approvals, letters, and the client panel's
forms (included from ``cobranza.urls`` under /cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.ops import views

urlpatterns = [
    path("lo-que-sale/", views.outbox, name="outbox"),
    path("avisos/", views.notice_list, name="notice_list"),
    path("avisos/<int:pk>/", views.notice_detail, name="notice_detail"),
    path("avisos/<int:pk>/reintentar/", views.notice_retry, name="notice_retry"),
    path("aprobaciones/", views.approvals, name="approvals"),
    path("aprobaciones/decidir/", views.approval_decide, name="approval_decide"),
    path("cartas/", views.letter_list, name="letters"),
    path("cartas/<int:pk>/pdf/", views.letter_pdf, name="letter_pdf"),
    path("cartas/marcar-impresas/", views.letters_mark_printed, name="letters_mark_printed"),
    path("clientes/<int:pk>/pausa/", views.client_pause, name="client_pause"),
    path("clientes/<int:pk>/politica/", views.client_policy, name="client_policy"),
    path("facturas/<int:pk>/retener/", views.invoice_hold, name="invoice_hold"),
    path("facturas/<int:pk>/liberar/", views.invoice_release, name="invoice_release"),
]
