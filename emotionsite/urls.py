"""URL routing: pages, accounts, API, admin and the health check."""

from django.contrib import admin
from django.urls import include, path

from classifier.views import health

urlpatterns = [
    path("", include("classifier.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/", include("classifier.api.urls")),
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
]

handler400 = "classifier.api.errors.bad_request"
handler404 = "classifier.api.errors.page_not_found"
handler500 = "classifier.api.errors.server_error"
