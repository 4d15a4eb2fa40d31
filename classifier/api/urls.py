from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.routers import SimpleRouter

from accounts.api import TokenObtainView
from classifier.api import views
from classifier.api.parsers import JSONParser

router = SimpleRouter(trailing_slash=True)
router.register("captures", views.CaptureViewSet, basename="capture")
router.register("faces", views.FaceViewSet, basename="face")
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

urlpatterns = [
    path("v1/", include((api_v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The schema to read in a browser (/api/schema/ itself is a YAML file, which browsers download).
    path("reference/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
