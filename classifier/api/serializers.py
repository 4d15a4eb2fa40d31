"""The API's JSON shapes and the validation of what comes in; storing is the services' job."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from classifier import selectors, services, videos
from classifier.images import upload_limits_text
from classifier.models import Capture, Expression, Face, ModelActivation, ModelVersion, TrainingJob, Video
from ml.labels import EXPRESSIONS


class FaceSerializer(serializers.ModelSerializer):
    box = serializers.SerializerMethodField(help_text="[x, y, width, height] in the stored image's pixels")
    probabilities = serializers.SerializerMethodField(help_text="all seven expressions, summing to 1")
    image_url = serializers.SerializerMethodField(help_text="the face cut from its photo, for reviewing it")

    class Meta:
        model = Face
        fields = [
            "id",
            "capture",
            "number",
            "box",
            "image_url",
            "predicted_label",
            "confidence",
            "probabilities",
            "true_label",
            "is_correct",
        ]
        read_only_fields = fields

    def get_image_url(self, face: Face) -> str:
        return reverse("classifier:face_image", args=[face.pk], request=self.context.get("request"))

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4))
    def get_box(self, face: Face) -> list[int]:
        return list(face.box)

    @extend_schema_field(serializers.DictField(child=serializers.FloatField()))
    def get_probabilities(self, face: Face) -> dict[str, float]:
        return {label: face.probabilities.get(label, 0.0) for label in EXPRESSIONS}


class FaceReviewSerializer(serializers.Serializer):
    true_label = serializers.ChoiceField(
        choices=Expression.choices,
        allow_null=True,
        help_text="the face's true expression; null withdraws the review",
    )


class CaptureSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True)
    whole_image = serializers.BooleanField(
        read_only=True, help_text="the image was already a tight face crop and was classified as a whole"
    )
    faces = FaceSerializer(many=True, read_only=True)

    class Meta:
        model = Capture
        fields = [
            "id",
            "created_at",
            "source",
            "image_url",
            "thumbnail_url",
            "width",
            "height",
            "model_version",
            "whole_image",
            "video",
            "video_time",
            "faces",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "video": {"help_text": "a video frame's video; null for a photo"},
            "video_time": {"help_text": "a video frame's time, in seconds from the video's start"},
        }

    def get_image_url(self, capture: Capture) -> str:
        return reverse("classifier:capture_image", args=[capture.pk], request=self.context.get("request"))

    def get_thumbnail_url(self, capture: Capture) -> str:
        return reverse("classifier:capture_thumbnail", args=[capture.pk], request=self.context.get("request"))


class ImageUploadSerializer(serializers.Serializer):
    """One image, as `POST /captures/` and `POST /predict/` take it."""

    image = serializers.FileField(
        help_text=upload_limits_text(
            max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES,
            max_pixels=settings.EMOTIONSITE_MAX_PIXELS,
            max_decoded_bytes=settings.EMOTIONSITE_MAX_DECODED_BYTES,
        ),
        allow_empty_file=True,  # the service refuses it with its own message
    )


class CaptureCreateSerializer(ImageUploadSerializer):
    source = serializers.ChoiceField(choices=Capture.SENT_SOURCES, default=Capture.Source.UPLOAD)


class PredictedFaceSerializer(serializers.Serializer):
    """A face found and read by `POST /predict/`: as a capture's face, without what storing gives it."""

    number = serializers.IntegerField()
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)
    predicted_label = serializers.ChoiceField(choices=Expression.choices)
    confidence = serializers.FloatField()
    probabilities = serializers.DictField(child=serializers.FloatField())


class PredictionSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    whole_image = serializers.BooleanField()
    faces = PredictedFaceSerializer(many=True)

    @staticmethod
    def of(prediction) -> dict:
        """The JSON of a services.ImagePrediction, its faces numbered in reading order."""
        faces = [
            {"number": number, "box": [int(value) for value in found.box], **services.face_reading(scores)}
            for number, (found, scores) in enumerate(
                zip(prediction.finding.faces, prediction.probabilities, strict=True), start=1
            )
        ]
        return {
            "model_version": prediction.model_version.version,
            "width": prediction.picture.width,
            "height": prediction.picture.height,
            "whole_image": prediction.finding.whole_image,
            "faces": faces,
        }


class CaptureFilterSerializer(serializers.Serializer):
    """The list's query parameters; they apply to one face together."""

    label = serializers.ChoiceField(choices=Expression.choices, required=False, help_text="predicted expression")
    reviewed = serializers.BooleanField(required=False, allow_null=True, default=None)
    correct = serializers.BooleanField(required=False, allow_null=True, default=None)


class ModelVersionSerializer(serializers.ModelSerializer):
    is_active = serializers.SerializerMethodField()
    state_display = serializers.CharField(source="get_state_display", read_only=True)
    parent = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "state",
            "state_display",
            "is_active",
            "parent",
            "metrics",
            "training",
            "decision",
            "problem",
            "created_at",
        ]
        read_only_fields = fields

    def get_is_active(self, model_version: ModelVersion) -> bool:
        return model_version.state == ModelVersion.State.ACTIVE

    def to_representation(self, model_version: ModelVersion) -> dict:
        data = super().to_representation(model_version)
        request = self.context.get("request")
        if not (request and request.user.is_staff):
            # Server paths are for staff: a problem names the folder, the training summary the reference data.
            data["problem"] = "cannot be used" if data["problem"] else ""
            data["training"] = {key: value for key, value in data["training"].items() if key != "reference_data"}
        return data


class ModelActivationSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True)
    replaced = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)
    activated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    reason_display = serializers.CharField(source="get_reason_display", read_only=True)

    class Meta:
        model = ModelActivation
        fields = [
            "model_version",
            "replaced",
            "reason",
            "reason_display",
            "activated_by",
            "training_job",
            "activated_at",
        ]
        read_only_fields = fields


class AccuracyQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=[("mine", "mine"), ("site", "site")],
        default="mine",
        help_text="mine: your own faces; site: everyone's (staff only)",
    )
    since = serializers.DateField(required=False, allow_null=True, default=None, help_text="only faces captured since")


class ClassScoreSerializer(serializers.Serializer):
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    support = serializers.IntegerField()


class ConfusionSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        source="confusion",
        help_text="matrix[true][predicted], both in `labels` order",
    )


class DayAccuracySerializer(serializers.Serializer):
    day = serializers.DateField()
    reviewed = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class ModelVersionAccuracySerializer(serializers.Serializer):
    version = serializers.CharField()
    state = serializers.CharField()
    reviewed = serializers.IntegerField()
    correct = serializers.IntegerField()
    unreviewed = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class AccuracySerializer(serializers.Serializer):
    scope = serializers.SerializerMethodField()
    reviewed = serializers.IntegerField()
    correct = serializers.IntegerField()
    unreviewed = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True, help_text="over reviewed faces; null before the first review")
    per_class = serializers.DictField(child=ClassScoreSerializer())
    confusion = ConfusionSerializer(source="*")
    by_day = DayAccuracySerializer(many=True)
    by_model_version = ModelVersionAccuracySerializer(many=True)

    def get_scope(self, summary) -> str:
        return self.context["scope"]


class TrainingJobSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    base_version = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)
    fraction_done = serializers.FloatField(read_only=True, allow_null=True, help_text="share of training steps done")
    progress_summary = serializers.CharField(read_only=True, help_text="where the job is, in words")
    state = serializers.ChoiceField(
        source="state_now",
        choices=TrainingJob.State.choices,
        read_only=True,
        help_text="failed once its worker stopped",
    )
    state_display = serializers.CharField(source="state_now_display", read_only=True, help_text="the state in words")
    error = serializers.CharField(source="error_now", read_only=True)
    progress = serializers.DictField(
        help_text="phase, and while training: epoch, epochs, step, steps, loss, validation_accuracy, seconds_left"
    )

    class Meta:
        model = TrainingJob
        fields = [
            "id",
            "state",
            "state_display",
            "requested_by",
            "base_version",
            "options",
            "progress",
            "fraction_done",
            "progress_summary",
            "cancel_requested",
            "error",
            "model_version",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingJobCreateSerializer(serializers.Serializer):
    base_version = serializers.SlugRelatedField(
        slug_field="version",
        queryset=ModelVersion.objects.all(),
        required=False,
        allow_null=True,
        help_text="the version to fine-tune; default the active one",
    )
    use_reference_data = serializers.BooleanField(
        default=True, help_text="mix in the reference data set, when the site has one configured"
    )


class VideoSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(
        source="state_now", choices=Video.State.choices, read_only=True, help_text="failed once its worker stopped"
    )
    state_display = serializers.CharField(source="state_now_display", read_only=True, help_text="the state in words")
    error = serializers.CharField(source="error_now", read_only=True, help_text="why it failed, for people")
    progress_summary = serializers.CharField(read_only=True, help_text="where the reading is, in words")
    fraction_done = serializers.FloatField(read_only=True, help_text="share of the frames to read that are read")
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)
    face_count = serializers.IntegerField(read_only=True, help_text="faces found in the frames read")
    track_count = serializers.IntegerField(read_only=True, help_text="faces followed through the video")

    class Meta:
        model = Video
        fields = [
            "id",
            "name",
            "created_at",
            "container",
            "codec",
            "width",
            "height",
            "duration",
            "frame_rate",
            "size",
            "samples_per_second",
            "state",
            "state_display",
            "error",
            "samples_done",
            "samples_total",
            "fraction_done",
            "progress_summary",
            "model_version",
            "face_count",
            "track_count",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "duration": {"help_text": "seconds"},
            "size": {"help_text": "bytes"},
            "samples_per_second": {"help_text": "the rate at which frames are read"},
            "samples_done": {"help_text": "frames read so far"},
        }


class TimelinePointSerializer(serializers.Serializer):
    time = serializers.FloatField(help_text="seconds from the video's start")
    face = serializers.IntegerField(help_text="the face's id: PATCH /api/v1/faces/{id}/ reviews it")
    capture = serializers.IntegerField(help_text="the frame's capture: GET /api/v1/captures/{id}/")
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)
    predicted_label = serializers.ChoiceField(choices=Expression.choices)
    confidence = serializers.FloatField()
    probabilities = serializers.DictField(child=serializers.FloatField())
    true_label = serializers.ChoiceField(choices=Expression.choices, allow_null=True)
    is_correct = serializers.BooleanField(allow_null=True)


class TrackSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="the same for the same face in every frame it was followed")
    points = TimelinePointSerializer(many=True)


class VideoDetailSerializer(VideoSerializer):
    timeline = serializers.SerializerMethodField(help_text="each face followed through the video, in time order")

    class Meta(VideoSerializer.Meta):
        fields = [*VideoSerializer.Meta.fields, "timeline"]
        read_only_fields = fields

    @extend_schema_field(TrackSerializer(many=True))
    def get_timeline(self, video: Video) -> list[dict]:
        return TrackSerializer(selectors.video_timeline(video), many=True).data


class VideoCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=videos.upload_limits_text(
            max_bytes=settings.EMOTIONSITE_VIDEO.max_bytes,
            max_seconds=settings.EMOTIONSITE_VIDEO.max_seconds,
            max_pixels=settings.EMOTIONSITE_VIDEO.max_pixels,
        ),
        allow_empty_file=True,  # the service refuses it with its own message
    )
    samples_per_second = serializers.FloatField(
        min_value=settings.EMOTIONSITE_VIDEO.min_samples_per_second,
        max_value=settings.EMOTIONSITE_VIDEO.max_samples_per_second,
        default=settings.EMOTIONSITE_VIDEO.samples_per_second,
        help_text="how many frames are read per second of video",
    )
