"""Staff see every capture, face and model version here, with thumbnails; deletes go through the services."""

import base64
import io

import numpy as np
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy
from knox.models import AuthToken
from PIL import Image

from accounts.forms import StaffPasswordChangeForm, StaffSignInForm
from accounts.models import User
from classifier import selectors, services
from classifier.models import Capture, Face, ModelVersion, TrainingJob, Video
from ml.labels import INPUT_SIZE


def _thumbnail(capture_id: int, size: int = 64) -> str:
    url = reverse("classifier:capture_thumbnail", args=[capture_id])
    return format_html('<img src="{}" alt="" style="max-width:{}px;max-height:{}px">', url, size, size)


class _SaysWhenFilesCannotBeRemoved:
    """A delete (the page or the action) whose files cannot be removed says why and deletes nothing more."""

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except services.MediaUnavailable as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return redirect(request.path)

    def response_action(self, request: HttpRequest, queryset: QuerySet, **options) -> HttpResponse | None:
        try:
            return super().response_action(request, queryset, **options)
        except services.MediaUnavailable as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return redirect(request.get_full_path())


class FaceInline(admin.TabularInline):
    model = Face
    extra = 0
    can_delete = False
    fields = ["predicted_label", "confidence", "box_x", "box_y", "box_width", "box_height", "true_label", "is_correct"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Capture)
class CaptureAdmin(_SaysWhenFilesCannotBeRemoved, admin.ModelAdmin):
    list_display = [
        "id",
        "thumbnail_image",
        "owner",
        "source",
        "created_at",
        "face_count",
        "whole_image",
        "model_version",
    ]
    list_filter = ["source", "whole_image", "model_version", "created_at"]
    search_fields = ["owner__username"]
    date_hierarchy = "created_at"
    list_select_related = ["owner", "model_version"]
    # The image files are private: they are shown and linked through classifier:capture_image, which checks
    # who asks. The file fields themselves stay off the page, as their URLs lead nowhere.
    fields = [
        "image_preview",
        "owner",
        "source",
        "width",
        "height",
        "whole_image",
        "model_version",
        "created_at",
        "thumbnail_preview",
    ]
    readonly_fields = fields
    inlines = [FaceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Capture]:
        return super().get_queryset(request).annotate(face_count=Count("faces"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # captures come through the site or the API, where the image is checked and classified

    @admin.display(description="Thumbnail")
    def thumbnail_image(self, capture: Capture) -> str:
        return _thumbnail(capture.pk)

    @admin.display(description="Image")
    def image_preview(self, capture: Capture) -> str:
        url = reverse("classifier:capture_image", args=[capture.pk])
        return format_html(
            '<a href="{url}"><img src="{url}" alt="Capture {id}" style="max-width:480px;height:auto"></a>'
            '<br><a href="{url}">Open the full image</a> ({width} × {height} JPEG)',
            url=url,
            id=capture.pk,
            width=capture.width,
            height=capture.height,
        )

    @admin.display(description="Thumbnail")
    def thumbnail_preview(self, capture: Capture) -> str:
        url = reverse("classifier:capture_thumbnail", args=[capture.pk])
        return format_html(
            '<a href="{url}"><img src="{url}" alt="Thumbnail of capture {id}"></a>', url=url, id=capture.pk
        )

    @admin.display(description="Faces", ordering="face_count")
    def face_count(self, capture: Capture) -> int:
        return capture.face_count

    def delete_model(self, request: HttpRequest, obj: Capture) -> None:
        services.capture_delete(capture=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Capture]) -> None:
        for capture in queryset:
            services.capture_delete(capture=capture)


@admin.register(Face)
class FaceAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumbnail_image",
        "capture_owner",
        "predicted_label",
        "confidence",
        "true_label",
        "is_correct",
        "model_version",
        "reviewed_by",
        "reviewed_at",
        "created_at",
    ]
    list_filter = ["predicted_label", "true_label", "is_correct", "model_version", "created_at"]
    search_fields = ["capture__owner__username"]
    list_select_related = ["capture__owner", "model_version", "reviewed_by"]
    readonly_fields = ["crop_image", *(field.name for field in Face._meta.fields if field.name != "crop")]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a review is its reviewer's verdict, given on the site, not edited here

    @admin.display(description="Model input")
    def crop_image(self, face: Face) -> str:
        """The crop the model saw (and retraining learns from), as an inline PNG; it is never a file of its own."""
        if face.crop is None:
            return "–"
        pixels = np.frombuffer(bytes(face.crop), np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        return format_html('<img src="{}" alt="" width="96" height="96" style="image-rendering:pixelated">', source)

    @admin.display(description="Capture")
    def thumbnail_image(self, face: Face) -> str:
        return _thumbnail(face.capture_id, size=48)

    @admin.display(description="Owner", ordering="capture__owner__username")
    def capture_owner(self, face: Face) -> str:
        return face.capture.owner.get_username()


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    # Short values only, so the list fits a 1280 px screen; the change page has every figure in full.
    list_display = [
        "version",
        "state_value",
        "held_out_accuracy",
        "validation_accuracy",
        "face_count",
        "parent_version",
        "created",
        "problem_summary",
    ]
    # No filter panel: it would take a fifth of a 1280 px screen, and State sorts the few versions as well.
    search_fields = ["version"]
    readonly_fields = [
        "version",
        "path",
        "state",
        "parent",
        "decision",
        "problem",
        "metrics",
        "training",
        "created_at",
        "registered_at",
        "activated_at",  # a fallback returns to the version that served last: only activating sets it
    ]
    actions = ["activate", "retrain", "delete_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return super().get_queryset(request).select_related("parent").annotate(face_count=Count("faces"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from retraining, or from their folders: `python manage.py register_models`

    def changelist_view(self, request: HttpRequest, extra_context=None):
        for broken in selectors.model_versions_with_problems():
            self.message_user(
                request, f"Model version {broken.version} cannot be used: {broken.problem}", messages.WARNING
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="State", ordering="state")
    def state_value(self, model_version: ModelVersion) -> str:
        return model_version.state

    @admin.display(description="Held-out reviewed faces: this vs active")
    def held_out_accuracy(self, model_version: ModelVersion) -> str:
        """A retrained version against the one active when it was trained, on the reviewed faces kept out of
        training; shipped and hand-registered versions were never compared."""
        held_out = model_version.metrics.get("held_out")
        try:
            candidate, active = held_out["candidate"]["accuracy"], held_out["active"]["accuracy"]
            count, active_version = held_out["count"], held_out["active_version"]
        except (KeyError, TypeError):
            return "–"
        return format_html(
            '<span title="{candidate} for this version, {active} for {active_version} (active when it was '
            'trained), on {count} held-out reviewed faces">{candidate} vs {active} ({count})</span>',
            candidate=f"{candidate:.1%}",
            active=f"{active:.1%}",
            active_version=active_version,
            count=count,
        )

    @admin.display(description="Validation accuracy (training run)")
    def validation_accuracy(self, model_version: ModelVersion) -> str:
        """The training run's own validation accuracy, on that run's validation split."""
        value = model_version.metrics.get("validation_accuracy")
        return f"{value:.1%}" if isinstance(value, int | float) else "–"

    @admin.display(description="Parent", ordering="parent__version")
    def parent_version(self, model_version: ModelVersion) -> str:
        # A method, not the field: a foreign key's column never wraps, and a version name is long.
        return model_version.parent.version if model_version.parent else "–"

    @admin.display(description="Created", ordering="created_at")
    def created(self, model_version: ModelVersion) -> str:
        return f"{timezone.localtime(model_version.created_at):%Y-%m-%d %H:%M}"

    @admin.display(description="Problem", ordering="problem")
    def problem_summary(self, model_version: ModelVersion) -> str:
        if not model_version.problem:
            return "–"
        short = Truncator(model_version.problem).chars(32)
        return format_html('<span title="{}">{}</span>', model_version.problem, short)

    @admin.display(description="Faces", ordering="face_count")
    def face_count(self, model_version: ModelVersion) -> int:
        return model_version.face_count

    @admin.action(description="Make the selected version the active one")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model version to activate.", messages.ERROR)
            return
        try:
            model_version = services.model_version_activate(model_version=queryset.get(), activated_by=request.user)
        except services.AlreadyActive as error:
            self.message_user(request, str(error), messages.INFO)
            return
        except services.ModelUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{model_version.version} is now the active model version.")

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        model_version = self.get_object(request, unquote(object_id))
        if model_version is not None and model_version.state == ModelVersion.State.ACTIVE:
            self.message_user(request, str(services.DeleteRefused.active(model_version)), messages.ERROR)
            return redirect("admin:classifier_modelversion_change", model_version.pk)
        return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        """Django's own action (its confirmation page lists what would go, or what protects the version),
        except that a selection holding the active version is refused at once."""
        active = queryset.filter(state=ModelVersion.State.ACTIVE).first()
        if active is not None:
            self.message_user(request, str(services.DeleteRefused.active(active)), messages.ERROR)
            return None
        return admin_actions.delete_selected(self, request, queryset)

    def delete_model(self, request: HttpRequest, obj: ModelVersion) -> None:
        deleted = services.model_version_delete(model_version=obj)
        level = messages.INFO if deleted.folder_removed else messages.WARNING
        self.message_user(request, f"Model version {deleted.version}: {deleted.folder_note}.", level)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for model_version in queryset:
            self.delete_model(request, model_version)

    @admin.action(description="Retrain the model (from the selected version)")
    def retrain(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select the one model version to fine-tune from.", messages.ERROR)
            return
        try:
            job = services.retrain_request(requested_by=request.user, base_version=queryset.get())
        except services.RetrainRefused as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return
        url = reverse("classifier:training")
        self.message_user(
            request, format_html('Training job {} is queued. <a href="{}">Follow it here</a>.', job.pk, url)
        )


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "state_now",
        "base_version",
        "model_version",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state"]
    list_select_related = ["base_version", "model_version", "requested_by"]
    readonly_fields = [field.name for field in TrainingJob._meta.fields]
    actions = ["cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a job is requested from the model versions' "Retrain" action or the training page

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the worker writes it

    @admin.display(description="state", ordering="state")
    def state_now(self, job: TrainingJob) -> str:
        return job.state_now_display

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        for job in queryset:
            try:
                services.training_job_cancel(job=job)
            except services.CancelRefused as refusal:
                self.message_user(request, str(refusal), messages.WARNING)
            else:
                done = "is cancelled" if job.state == TrainingJob.State.CANCELLED else "will stop within a few seconds"
                self.message_user(request, f"Training job {job.pk} {done}.")


@admin.register(Video)
class VideoAdmin(_SaysWhenFilesCannotBeRemoved, admin.ModelAdmin):
    """The file itself is private and never linked; its frames are captures, listed with them."""

    list_display = ["id", "name", "owner", "state_now", "duration", "samples_done", "created_at"]
    list_filter = ["state", "container", "created_at"]
    search_fields = ["owner__username", "name"]
    list_select_related = ["owner"]
    readonly_fields = [field.name for field in Video._meta.fields if field.name != "file"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # videos come through the site or the API, where they are checked

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the worker writes it

    @admin.display(description="state", ordering="state")
    def state_now(self, video: Video) -> str:
        return video.state_now_display

    def delete_model(self, request: HttpRequest, obj: Video) -> None:
        services.video_delete(video=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        for video in queryset:
            services.video_delete(video=video)


# Here rather than in accounts/: deleting an account deletes its captures' files, which is the
# product's business, and accounts/ imports nothing from the product.
@admin.register(User)
class UserAdmin(_SaysWhenFilesCannotBeRemoved, DjangoUserAdmin):
    change_password_form = StaffPasswordChangeForm

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.user_delete(user=user)


# The admin's sign-in says so when axes pauses it, as the site's does.
admin.site.login_form = StaffSignInForm
# API tokens are their owner's alone, seen on their account page: knox's page would list every one's hash.
admin.site.unregister(AuthToken)
