from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts import views_health
from cobranza.business import views as business_views
from cobranza.portal import views as portal_views

urlpatterns = [
    path("healthz", views_health.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("cuenta/", include("accounts.urls_auth")),
    path("cobranza/", include("cobranza.urls")),
    path("api/", include("cobranza.api.urls")),
    path("portal/", include("cobranza.portal.urls")),
    # Public, for debtors: the business's logo (emails, portal) and the short portal link of
    # SMS and WhatsApp messages.
    path("marca/logo", business_views.logo, name="business_logo"),
    path("p/<str:code>", portal_views.short_link, name="portal_short_link"),
    path("webhooks/respuestas/", include("cobranza.replies.urls_webhooks")),
    path("webhooks/", include("accounts.urls_webhooks")),
    path("", include("accounts.urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
