"""The collector's day: worklist, tasks and calendar (included from ``cobranza.urls`` under
/cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.worklist import views

urlpatterns = [
    path("mi-cartera/", views.worklist, name="worklist"),
    path("mi-cartera/reasignar/", views.worklist_reassign, name="worklist_reassign"),
    path("tareas/<int:pk>/hecha/", views.task_done, name="task_done"),
    path("calendario/", views.calendar, name="calendar"),
]
