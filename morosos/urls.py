from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts import views_health

urlpatterns = [
    path("healthz", views_health.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("cuenta/", include("accounts.urls_auth")),
    path("cobranza/", include("cobranza.urls")),
    path("api/", include("cobranza.api.urls")),
    path("portal/", include("cobranza.portal.urls")),
    path("webhooks/respuestas/", include("cobranza.replies.urls_webhooks")),
    path("webhooks/", include("accounts.urls_webhooks")),
    path("", include("accounts.urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
