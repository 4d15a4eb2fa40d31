from django.conf import settings
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.routers import SimpleRouter

from accounts.api import TokenObtainView
from classifier.api import views
from classifier.api.parsers import JSONParser

router = SimpleRouter(trailing_slash=True)
router.register("captures", views.CaptureViewSet, basename="capture")
router.register("faces", views.FaceViewSet, basename="face")
router.register("videos", views.VideoViewSet, basename="video")
router.register("training-jobs", views.TrainingJobViewSet, basename="training-job")

api_v1 = [
    path(
        "auth/token/",
        TokenObtainView.as_view(parser_classes=[FormParser, MultiPartParser, JSONParser]),
        name="token",
    ),
    path("accuracy/", views.AccuracyView.as_view(), name="accuracy"),
    path("review-queue/", views.ReviewQueueView.as_view(), name="review-queue"),
    path("predict/", views.PredictView.as_view(), name="predict"),
    path("models/", views.ModelVersionListView.as_view(), name="model-version-list"),
    path("model-activations/", views.ModelActivationListView.as_view(), name="model-activation-list"),
    path("models/<str:version>/activate/", views.ModelVersionActivateView.as_view(), name="model-version-activate"),
    *router.urls,
]

# Swagger UI and Redoc style their pages from their own scripts, with inline styles, and Redoc searches in a
# worker it makes from a blob: the site's policy, with those allowed on these two pages. Scripts stay this
# site's files alone.
documentation_policy = csp_override(
    {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE], "worker-src": [CSP.SELF, "blob:"]}
)

urlpatterns = [
    path("v1/", include((api_v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Split: the page's script is served from the same URL (?script), as the Content-Security-Policy allows
    # no inline script.
    path("docs/", documentation_policy(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="swagger-ui"),
    # The schema to read in a browser (/api/schema/ itself is a YAML file, which browsers download).
    path("reference/", documentation_policy(SpectacularRedocView.as_view(url_name="schema")), name="redoc"),
]
