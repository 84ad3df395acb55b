"""The REST API: /api/v1/… resources, the OpenAPI schema and its Swagger UI and Redoc
pages (assets served locally by drf-spectacular-sidecar). URL names are ``api:<basename>-list``,
``api:<basename>-detail`` and ``api:<basename>-<action>``."""

from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import metrics, views
from .permissions import IsStaffMember
from .schema import SCHEMA_SETTINGS

app_name = "api"

# Path converters (not regexes), so every route's ``pk`` is visible to the URL walk test.
router = SimpleRouter(use_regex_path=False)
router.register("clients", views.ClientViewSet, basename="client")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("segments", views.SegmentViewSet, basename="segment")
router.register("invoices", views.InvoiceViewSet, basename="invoice")
router.register("payments", views.PaymentViewSet, basename="payment")
router.register("interactions", views.InteractionViewSet, basename="interaction")
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("notices", views.NoticeViewSet, basename="notice")
router.register("promises", views.PromiseViewSet, basename="promise")
router.register("payment-plans", views.PaymentPlanViewSet, basename="payment-plan")
router.register("disputes", views.DisputeViewSet, basename="dispute")
router.register("tasks", views.TaskViewSet, basename="task")

# The documentation holds no client data, but like the rest of /api/ it is for staff.
STAFF = [IsStaffMember]

DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}

urlpatterns: list = [
    path("v1/", include(router.urls)),
    path("v1/metrics/portfolio/", metrics.PortfolioMetricsView.as_view(), name="metrics-portfolio"),
    path("v1/metrics/trend/", metrics.TrendMetricsView.as_view(), name="metrics-trend"),
    path("v1/metrics/forecast/", metrics.ForecastMetricsView.as_view(), name="metrics-forecast"),
    path(
        "schema/", SpectacularAPIView.as_view(custom_settings=SCHEMA_SETTINGS, permission_classes=STAFF), name="schema"
    ),
    # Vendored pages we do not write: Swagger UI's start-up script is served as a file (the
    # split view), but both pages carry a <style> element and Redoc styles itself at run time
    # (and starts a web worker from a blob), so their policy allows inline styles.
    path(
        "docs/",
        csp_update(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=STAFF)),
        name="swagger-ui",
    ),
    path(
        "redoc/",
        csp_update(DOCS_CSP)(
            SpectacularRedocView.as_view(
                url_name="api:schema", permission_classes=STAFF, template_name="api/redoc.html"
            )
        ),
        name="redoc",
    ),
    # Last: any other /api/ path (a typo, /v1/clients/abc/) is the API's JSON 404, not the
    # site's HTML page (found by tests/fuzz/test_api_schemathesis.py).
    re_path(r"^.*$", views.api_not_found, name="not-found"),
]
