"""API endpoints: every queryset starts from what the requesting user may see, so another user's id is a 404."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import selectors, services
from classifier.api.parsers import JSONParser
from classifier.api.serializers import (
    AccuracyQuerySerializer,
    AccuracySerializer,
    CaptureCreateSerializer,
    CaptureFilterSerializer,
    CaptureSerializer,
    FaceReviewSerializer,
    FaceSerializer,
    ImageUploadSerializer,
    ModelActivationSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    TrainingJobCreateSerializer,
    TrainingJobSerializer,
    VideoCreateSerializer,
    VideoDetailSerializer,
    VideoSerializer,
)
from classifier.images import refuse_a_declared_oversized_upload
from classifier.models import IDEMPOTENCY_KEY_HOURS
from classifier.videos import refuse_a_declared_oversized_video

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

# What the two doors that read an image answer when they refuse it, for the schema.
UPLOAD_REFUSALS = {
    400: OpenApiResponse(description="not an image, or a damaged one"),
    413: OpenApiResponse(
        description="larger than EMOTIONSITE_MAX_UPLOAD_BYTES or EMOTIONSITE_MAX_PIXELS, or needing more than "
        "EMOTIONSITE_MAX_DECODED_BYTES of memory to decode"
    ),
    503: OpenApiResponse(
        description="no model version can predict, or (captures only) the media folder cannot be written"
    ),
}


@extend_schema_view(
    list=extend_schema(parameters=[CaptureFilterSerializer]),
    create=extend_schema(
        request={"multipart/form-data": CaptureCreateSerializer},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_KEY_HEADER,
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "Any 1 to 255 visible ASCII characters, new for each new upload (a UUID will do). A retry with "
                    f"the same key by the same user within {IDEMPOTENCY_KEY_HOURS} hours gets the capture the "
                    "first request made (201, the same id) and stores nothing more; another image or source "
                    "under that key is a 422."
                ),
            )
        ],
        responses={
            201: CaptureSerializer,
            **UPLOAD_REFUSALS,
            422: OpenApiResponse(description="the Idempotency-Key was used for another request"),
        },
    ),
    destroy=extend_schema(
        responses={
            204: None,
            503: OpenApiResponse(description="the media folder cannot be written: the capture is kept as it was"),
        }
    ),
)
class CaptureViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CaptureSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        if self.action != "list":
            return selectors.capture_list(user=self.request.user, video_frames=True)
        filters = CaptureFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.capture_list(user=self.request.user, **filters.validated_data)

    def create(self, request: Request, *args, **kwargs) -> Response:
        refuse_a_declared_oversized_upload(
            request.META.get("CONTENT_LENGTH"), max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES
        )
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if key is not None and not (1 <= len(key) <= 255 and key.isascii() and key.isprintable()):
            raise ParseError(f"{IDEMPOTENCY_KEY_HEADER} must be 1 to 255 visible ASCII characters.")
        upload = CaptureCreateSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        # Answered from the capture as written (or, for a retry, as its key's record read it, with its version):
        # only its faces are read (one query).
        capture = services.capture_create(owner=request.user, idempotency_key=key, **upload.validated_data)
        return Response(self.get_serializer(capture).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance) -> None:
        services.capture_delete(capture=instance)


class PredictView(APIView):
    """Find and read the faces of one image and store nothing: for live previews (the webcam's live mode).

    The same checks and limits as `POST /captures/`, and the same faces' JSON, without ids or reviews.
    """

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImageUploadSerializer},
        responses={
            200: PredictionSerializer,
            **UPLOAD_REFUSALS,
        },
    )
    def post(self, request: Request) -> Response:
        refuse_a_declared_oversized_upload(
            request.META.get("CONTENT_LENGTH"), max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES
        )
        upload = ImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        return Response(PredictionSerializer.of(services.image_predict(image=upload.validated_data["image"])))


@extend_schema_view(
    create=extend_schema(
        request={"multipart/form-data": VideoCreateSerializer},
        responses={
            201: VideoSerializer,
            400: OpenApiResponse(description="not an MP4, WebM or MOV video, a damaged or cut one, or only sound"),
            413: OpenApiResponse(description="over EMOTIONSITE_VIDEO's limits: bytes, length or frame size"),
            503: OpenApiResponse(description="the media folder cannot be written: nothing was stored"),
        },
    ),
    retrieve=extend_schema(responses=VideoDetailSerializer),
    destroy=extend_schema(
        responses={
            204: None,
            503: OpenApiResponse(description="the media folder cannot be written: the video is kept as it was"),
        }
    ),
)
class VideoViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your videos, newest first. Upload one (checked all through, then read by the background worker:
    follow `state` and `fraction_done`); its detail has the emotion timeline once it is read."""

    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.video_list(user=self.request.user)

    def get_serializer_class(self):
        return VideoDetailSerializer if self.action == "retrieve" else VideoSerializer

    def create(self, request: Request, *args, **kwargs) -> Response:
        refuse_a_declared_oversized_video(
            request.META.get("CONTENT_LENGTH"), max_bytes=settings.EMOTIONSITE_VIDEO.max_bytes
        )
        upload = VideoCreateSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        video = services.video_create(owner=request.user, **upload.validated_data)
        return Response(VideoSerializer(self.get_queryset().get(pk=video.pk)).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance) -> None:
        services.video_delete(video=instance)


class FaceViewSet(mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = FaceSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.faces_reviewable_by(self.request.user)

    @extend_schema(request=FaceReviewSerializer, responses=FaceSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        face = self.get_object()
        review = FaceReviewSerializer(data=request.data)
        review.is_valid(raise_exception=True)
        face = services.face_review(face=face, reviewer=request.user, true_label=review.validated_data["true_label"])
        return Response(self.get_serializer(face).data)


class ReviewQueueView(generics.ListAPIView):
    """The unreviewed faces you may review (yours; everyone's for reviewers), least confident first.

    `count` is how many are left. Review one with `PATCH /api/v1/faces/{id}/`.
    """

    serializer_class = FaceSerializer

    def get_queryset(self):
        return selectors.review_queue(user=self.request.user)


class AccuracyView(APIView):
    @extend_schema(parameters=[AccuracyQuerySerializer], responses=AccuracySerializer)
    def get(self, request: Request) -> Response:
        query = AccuracyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        scope = query.validated_data["scope"]
        if scope == "site" and not request.user.is_staff:
            raise PermissionDenied("Only staff may see the whole site's accuracy.")
        summary = selectors.accuracy_summary(
            user=None if scope == "site" else request.user, since=query.validated_data["since"]
        )
        return Response(AccuracySerializer(summary, context={"scope": scope}).data)


class ModelVersionListView(APIView):
    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            ModelVersionSerializer(selectors.model_version_list(), many=True, context={"request": request}).data
        )


class ModelActivationListView(generics.ListAPIView):
    """Staff: every time a model version became the active one, newest first."""

    serializer_class = ModelActivationSerializer
    permission_classes = [permissions.IsAdminUser]

    def get_queryset(self):
        return selectors.model_activation_list()


class ModelVersionActivateView(APIView):
    """Staff: make this version the active one (a rollback is activating an earlier version)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=None,
        responses={200: ModelVersionSerializer, 409: OpenApiResponse(description="no folder, or already active")},
    )
    def post(self, request: Request, version: str) -> Response:
        model_version = get_object_or_404(selectors.model_version_list(), version=version)
        services.model_version_activate(model_version=model_version, activated_by=request.user)
        return Response(ModelVersionSerializer(model_version, context={"request": request}).data)


@extend_schema_view(
    create=extend_schema(
        request=TrainingJobCreateSerializer,
        responses={
            201: TrainingJobSerializer,
            409: OpenApiResponse(description="too few reviewed faces, or a job is already queued or running"),
        },
    ),
)
class TrainingJobViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Staff: retraining jobs, newest first; request one, follow its progress, cancel it."""

    serializer_class = TrainingJobSerializer
    permission_classes = [permissions.IsAdminUser]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        return selectors.training_job_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        options = TrainingJobCreateSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        job = services.retrain_request(requested_by=request.user, **options.validated_data)
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TrainingJobSerializer, 409: OpenApiResponse(description="ended")})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = services.training_job_cancel(job=self.get_object())
        return Response(self.get_serializer(job).data)
