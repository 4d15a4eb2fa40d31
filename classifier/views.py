"""Pages: translate HTTP to services and selectors and back; no logic of their own."""

from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from PIL import Image
from rest_framework.decorators import api_view, schema
from rest_framework.request import Request

from classifier import charts, exports, inference, selectors, services
from classifier.forms import CaptureFilterForm, CaptureForm, QueueReviewForm, ReviewForm, VideoForm
from classifier.images import encode_jpeg, enlarged_crop, face_picture, refuse_a_declared_oversized_upload
from classifier.models import WORKER_SILENT_AFTER, Capture
from classifier.training_data import face_crop
from classifier.videos import refuse_a_declared_oversized_video
from ml.labels import EXPRESSIONS

CAPTURES_PER_PAGE = 20
# The review queue keeps, in the session, the faces skipped and the last review (for undo).
SKIPPED_FACES = "review_queue_skipped"
LAST_REVIEW = "review_queue_last_review"
TRAINING_JOBS_SHOWN = 20
# The accuracy page's `?days=` choices; anything else means all time.
ACCURACY_PERIODS = {"": "All time", "90": "Last 90 days", "30": "Last 30 days"}


def home(request: HttpRequest) -> HttpResponse:
    """The upload page for people signed in; for everyone else, a word of what the site is."""
    if not request.user.is_authenticated and request.method == "GET":
        return render(request, "classifier/landing.html")
    return capture_new(request)


@login_required
def capture_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            refuse_a_declared_oversized_upload(
                request.META.get("CONTENT_LENGTH"), max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES
            )
        except services.ImageRefused as refusal:
            context = {"form": CaptureForm(), "refusal": refusal.message}
            return render(request, "classifier/capture_new.html", context, status=413)
    form = CaptureForm(request.POST, request.FILES) if request.method == "POST" else CaptureForm()
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            capture = services.capture_create(
                owner=request.user, image=form.cleaned_data["image"], source=form.cleaned_data["source"]
            )
        except services.ImageRefused as refusal:
            form.add_error("image", refusal.message)
            status = 413 if refusal.too_large else 400
        except services.ModelUnavailable:
            form.add_error(None, "The expression model is not available right now; an administrator has been told.")
            status = 503
        except services.MediaUnavailable as error:
            form.add_error(None, str(error))
            status = 503
        else:
            return redirect("classifier:capture_detail", capture_id=capture.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "classifier/capture_new.html", {"form": form}, status=status)


@login_required
@require_GET
def capture_webcam(request: HttpRequest) -> HttpResponse:
    """The webcam page. Its script puts the captured frame in this form and posts it to capture_new."""
    form = CaptureForm(initial={"source": Capture.Source.WEBCAM})
    return render(request, "classifier/capture_webcam.html", {"form": form})


@login_required
@require_GET
def capture_list(request: HttpRequest) -> HttpResponse:
    filter_form = CaptureFilterForm(request.GET)
    captures = selectors.capture_list(user=request.user, **filter_form.filters())
    page = Paginator(captures, CAPTURES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "classifier/capture_list.html",
        {"page": page, "filter_form": filter_form, "query": query.urlencode()},
    )


@login_required
@require_GET
def capture_detail(request: HttpRequest, capture_id: int) -> HttpResponse:
    capture = selectors.capture_detail(user=request.user, capture_id=capture_id)
    if capture is None:
        raise Http404("No such capture.")
    previous_frame, next_frame = selectors.video_frame_neighbours(capture) if capture.video_id else (None, None)
    return render(
        request,
        "classifier/capture_detail.html",
        {"capture": capture, "previous_frame": previous_frame, "next_frame": next_frame},
    )


@login_required
def capture_delete(request: HttpRequest, capture_id: int) -> HttpResponse:
    capture = selectors.capture_detail(user=request.user, capture_id=capture_id)
    if capture is None:
        raise Http404("No such capture.")
    status = 200
    if request.method == "POST":
        try:
            services.capture_delete(capture=capture)
        except services.MediaUnavailable as error:
            messages.error(request, str(error))
            status = 503
        else:
            messages.success(request, "The capture and its image were deleted.")
            return redirect("classifier:capture_list")
    return render(request, "classifier/capture_delete.html", {"capture": capture}, status=status)


@login_required
@require_POST
def face_review(request: HttpRequest, face_id: int) -> HttpResponse:
    face = selectors.faces_visible_to(request.user).filter(pk=face_id).first()
    if face is None:
        raise Http404("No such face.")
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the seven expressions.")
    else:
        services.face_review(face=face, reviewer=request.user, true_label=form.cleaned_data["true_label"] or None)
    return redirect(reverse("classifier:capture_detail", args=[face.capture_id]) + f"#face-{face.pk}")


@api_view(["GET"])
@schema(None)
def capture_image(request: Request, capture_id: int, kind: str) -> FileResponse:
    """The capture's stored image or thumbnail, to its owner (and to staff); everyone else gets a 404.

    A DRF view so that an API client's token works for the `image_url` it was given, as a session does.
    """
    capture = selectors.captures_with_images_visible_to(request.user).filter(pk=capture_id).first()
    if capture is None:
        raise Http404("No such capture.")
    name = capture.thumbnail.name if kind == "thumbnail" else capture.image.name
    try:
        file = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The image file is missing.") from None
    response = FileResponse(file, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@api_view(["GET"])
@schema(None)
def face_image(request: Request, face_id: int) -> HttpResponse:
    """A face, to whoever may review it and to staff who see photos: its owner gets it cut from the photo
    with a margin; anyone else gets only the crop the model saw, enlarged, never the photo around it."""
    user = request.user
    face = (
        (selectors.faces_reviewable_by(user) | selectors.faces_with_images_visible_to(user))
        .select_related("capture")
        .filter(pk=face_id)
        .first()
    )
    if face is None:
        raise Http404("No such face.")
    try:
        if face.capture.owner_id == user.pk:
            with default_storage.open(face.capture.image.name, "rb") as file:
                picture = face_picture(Image.open(file), face.box)
        else:
            picture = enlarged_crop(face_crop(face))
    except OSError:  # the image file is missing or cannot be read
        raise Http404("The image file is missing or damaged.") from None
    response = HttpResponse(encode_jpeg(picture), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    """One unreviewed face at a time, least confident first; keys 1-7, Enter, U and S (static/js/review.js)."""
    skipped = request.session.get(SKIPPED_FACES, [])
    face = selectors.review_queue(user=request.user, skipped=skipped).first()
    if face is None and skipped:  # every face left was skipped: start the round again
        request.session[SKIPPED_FACES] = skipped = []
        face = selectors.review_queue(user=request.user).first()
    top_three = []
    if face is not None:
        ranked = sorted(EXPRESSIONS, key=lambda label: face.probabilities.get(label, 0.0), reverse=True)
        top_three = [(label, face.probabilities.get(label, 0.0)) for label in ranked[:3]]
    return render(
        request,
        "classifier/review_queue.html",
        {
            "face": face,
            "top_three": top_three,
            "labels": list(enumerate(EXPRESSIONS, start=1)),
            "remaining": selectors.review_queue(user=request.user).count(),
            "skipped": len(skipped),
            "can_undo": request.session.get(LAST_REVIEW) is not None,
        },
    )


@login_required
@require_POST
def review_queue_review(request: HttpRequest, face_id: int) -> HttpResponse:
    face = get_object_or_404(selectors.faces_reviewable_by(request.user), pk=face_id)
    form = QueueReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the seven expressions, or say the prediction is right.")
        return redirect("classifier:review_queue")
    label = form.cleaned_data["true_label"]
    reviewed = services.face_review_from_queue(
        face=face, reviewer=request.user, true_label=face.predicted_label if label == form.RIGHT else label
    )
    if reviewed is None:
        messages.info(request, "Someone reviewed that face a moment ago; here is the next one.")
    else:
        request.session[LAST_REVIEW] = [reviewed.pk, reviewed.reviewed_at.isoformat()]
    return redirect("classifier:review_queue")


@login_required
@require_POST
def review_queue_skip(request: HttpRequest, face_id: int) -> HttpResponse:
    face = get_object_or_404(selectors.faces_reviewable_by(request.user), pk=face_id)
    request.session[SKIPPED_FACES] = [*request.session.get(SKIPPED_FACES, []), face.pk]
    return redirect("classifier:review_queue")


@login_required
@require_POST
def review_queue_undo(request: HttpRequest) -> HttpResponse:
    """Withdraw the last review made in the queue, which brings its face back to the front; not if it has
    been changed since."""
    face_id, reviewed_at = request.session.pop(LAST_REVIEW, (None, None))
    if face_id is None or not services.face_review_undo(
        face_id=face_id, reviewer=request.user, reviewed_at=datetime.fromisoformat(reviewed_at)
    ):
        messages.error(request, "There is no review of yours to undo.")
    else:
        messages.success(request, "Your last review was undone.")
    return redirect("classifier:review_queue")


@login_required
def video_list(request: HttpRequest) -> HttpResponse:
    """The user's videos, and the form that uploads one (checked all through before it is kept)."""
    form, status, refusal_unread = VideoForm(), 200, None
    if request.method == "POST":
        try:
            refuse_a_declared_oversized_video(
                request.META.get("CONTENT_LENGTH"), max_bytes=settings.EMOTIONSITE_VIDEO.max_bytes
            )
        except services.VideoRefused as refusal:
            # Said above the empty form: a form without data has nothing to attach an error to.
            refusal_unread, status = refusal.message, 413
        else:
            form = VideoForm(request.POST, request.FILES)
            status = 400
            if form.is_valid():
                try:
                    video = services.video_create(owner=request.user, **form.cleaned_data)
                except services.VideoRefused as refusal:
                    form.add_error("file", refusal.message)
                    status = 413 if refusal.too_large else 400
                except services.MediaUnavailable as error:
                    form.add_error(None, str(error))
                    status = 503
                else:
                    return redirect("classifier:video_detail", video_id=video.pk)
    context = {"form": form, "refusal": refusal_unread, "videos": selectors.video_list(user=request.user)}
    return render(request, "classifier/video_list.html", context, status=status)


@login_required
@require_GET
def video_detail(request: HttpRequest, video_id: int) -> HttpResponse:
    """A video's progress while the worker reads it (its script polls the API), then its emotion timeline."""
    video = get_object_or_404(selectors.video_list(user=request.user), pk=video_id)
    tracks = [
        (track, charts.timeline_chart(track, duration=video.duration, samples_per_second=video.samples_per_second))
        for track in selectors.video_timeline(video)
    ]
    return render(request, "classifier/video_detail.html", {"video": video, "tracks": tracks, "labels": EXPRESSIONS})


@login_required
def video_delete(request: HttpRequest, video_id: int) -> HttpResponse:
    video = get_object_or_404(selectors.video_list(user=request.user), pk=video_id)
    status = 200
    if request.method == "POST":
        try:
            services.video_delete(video=video)
        except services.MediaUnavailable as error:
            messages.error(request, str(error))
            status = 503
        else:
            messages.success(request, "The video, its frames and their faces were deleted.")
            return redirect("classifier:video_list")
    return render(request, "classifier/video_delete.html", {"video": video}, status=status)


EXPORTS = {
    "csv": (exports.csv_chunks, "text/csv; charset=utf-8", "faces.csv"),
    "json": (exports.json_chunks, "application/json", "faces.json"),
    "crops": (exports.crops_zip_chunks, "application/zip", "reviewed-faces.zip"),
}


@api_view(["GET"])
@schema(None)
def export(request: Request, kind: str) -> StreamingHttpResponse:
    """The user's captures, faces, predictions and reviews (CSV or JSON), or their reviewed crops (ZIP),
    streamed; `?scope=site` gives staff the whole site's. A DRF view, so an API token works as a session does."""
    site_wide = request.GET.get("scope") == "site"
    if site_wide and not selectors.sees_every_capture(request.user):
        raise PermissionDenied("Only staff who may view every capture export the whole site's faces.")
    faces = selectors.faces_for_export(user=request.user, site_wide=site_wide)
    if kind == "crops":
        faces = faces.filter(reviewed_at__isnull=False)
    chunks, content_type, filename = EXPORTS[kind]
    response = StreamingHttpResponse(chunks(faces.iterator(chunk_size=exports.CHUNK)), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{"site-" if site_wide else ""}{filename}"'
    return response


@login_required
@require_GET
def accuracy(request: HttpRequest) -> HttpResponse:
    """The accuracy dashboard over the user's reviewed faces, or, for staff asking `?scope=site`, everyone's."""
    site_wide = request.GET.get("scope") == "site"
    if site_wide and not request.user.is_staff:
        raise PermissionDenied("Only staff see the whole site's accuracy.")
    days = request.GET.get("days", "")
    days = days if days in ACCURACY_PERIODS else ""
    since = timezone.localdate() - timedelta(days=int(days) - 1) if days else None
    summary = selectors.accuracy_summary(user=None if site_wide else request.user, since=since)

    def link(text: str, current: bool, **query: str) -> dict:
        query_string = urlencode({name: value for name, value in query.items() if value})
        return {"text": text, "current": current, "href": request.path + (f"?{query_string}" if query_string else "")}

    scope = "site" if site_wide else ""
    return render(
        request,
        "classifier/accuracy.html",
        {
            "site_wide": site_wide,
            "days": days,
            "scope_links": [
                link("Yours", not site_wide, days=days),
                link("Whole site", site_wide, scope="site", days=days),
            ]
            if request.user.is_staff
            else [],
            "period_links": [
                link(text, value == days, scope=scope, days=value) for value, text in ACCURACY_PERIODS.items()
            ],
            **charts.dashboard_context(summary),
        },
    )


@staff_member_required
@require_GET
def training(request: HttpRequest) -> HttpResponse:
    """Staff: retrain the model, follow the jobs (the page's script polls the API), activate any version."""
    counts = selectors.reviewed_face_counts()
    jobs = list(selectors.training_job_list()[:TRAINING_JOBS_SHOWN])
    return render(
        request,
        "classifier/training.html",
        {
            "jobs": jobs,
            "unfinished_job": next((job for job in jobs if not job.is_finished), None),
            "model_versions": selectors.model_version_list(),
            "activations": selectors.model_activation_list()[:TRAINING_JOBS_SHOWN],
            "reviewed_counts": counts,
            "reviewed_total": sum(counts.values()),
            "refusal": selectors.retrain_refusal(counts),
            "reference_data": settings.EMOTIONSITE_REFERENCE_DATA,
            "retrain_settings": settings.EMOTIONSITE_RETRAIN,
        },
    )


@staff_member_required
@require_POST
def retrain(request: HttpRequest) -> HttpResponse:
    use_reference_data = request.POST.get("use_reference_data") == "on"
    try:
        job = services.retrain_request(requested_by=request.user, use_reference_data=use_reference_data)
    except services.RetrainRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"Training job {job.pk} is queued.")
    return redirect("classifier:training")


@staff_member_required
@require_POST
def training_job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(selectors.training_job_list(), pk=job_id)
    try:
        job = services.training_job_cancel(job=job)
    except services.CancelRefused as refusal:
        messages.error(request, str(refusal))
    else:
        done = "is cancelled" if job.state == job.State.CANCELLED else "will stop within a few seconds"
        messages.success(request, f"Training job {job.pk} {done}.")
    return redirect("classifier:training")


@staff_member_required
def model_version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    """GET asks to confirm, naming the version it replaces; POST activates."""
    model_version = get_object_or_404(selectors.model_version_list(), pk=version_id)
    if request.method != "POST":
        already_active = services.AlreadyActive.applies_to(model_version)
        context = {
            "model_version": model_version,
            "active": selectors.active_model_version(),
            "already_active": str(services.AlreadyActive.of(model_version)) if already_active else None,
        }
        return render(request, "classifier/model_version_activate.html", context)
    try:
        services.model_version_activate(model_version=model_version, activated_by=request.user)
    except services.AlreadyActive as error:
        messages.info(request, str(error))
    except services.ModelUnavailable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{model_version.version} is now the active model version.")
    return redirect("classifier:training")


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """For the container's health check, load balancers and monitors: is each part of the site working.

    `database`; `model_version`, the one serving; `worker`, "ok" while a background worker has said it is
    alive within WORKER_SILENT_AFTER (busy or idle); `media`, "ok" while the media folder can be written.
    "ok" when every part is; "degraded" when the site serves but a part fails: no worker (retraining waits),
    an unwritable media folder (uploads and deletes are refused with a 503 that says so), or a broken model
    version (`model_problems`); "error" (503) when it cannot serve at all (no database, no model).

    Degraded answers 200 on purpose: the worker and a shared media folder are the same for every web
    process, so a load balancer that took this one out would take them all out, and turn a fault of one part
    into a whole outage. Monitors alert on `status` instead.

    Read-only, as a GET must be, and cheap (a few indexed queries and one permission check): it loads the
    active version (once per process) to see that it can, but a version that cannot load is only reported; the
    next prediction records it and falls back. Why a version is broken is for staff, in the admin: it names
    server paths, as a media problem would, so neither is given here.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        model_version = selectors.active_model_version()
        broken = list(selectors.model_versions_with_problems().values_list("version", flat=True))
        last_heartbeat = selectors.worker_last_heartbeat()
    except DatabaseError as error:
        return JsonResponse({"status": "error", "database": f"error: {error}", "model_version": None}, status=503)
    if model_version is not None and model_version.version not in broken:
        try:
            inference.predictor_for(model_version)
        except services.ModelUnavailable:
            broken.append(model_version.version)
    serving = model_version is not None and model_version.version not in broken
    if last_heartbeat is None:
        worker = "no heartbeat yet: is `python manage.py db_worker` running?"
    elif last_heartbeat < timezone.now() - WORKER_SILENT_AFTER:
        worker = f"no heartbeat since {last_heartbeat:%Y-%m-%d %H:%M:%S} UTC"
    else:
        worker = "ok"
    media = "ok" if selectors.media_problem() is None else "not writable"
    report = {
        "status": "error" if not serving else "ok" if not broken and worker == media == "ok" else "degraded",
        "database": "ok",
        "model_version": model_version.version if model_version else None,
        "worker": worker,
        "media": media,
    }
    if broken:
        report["model_problems"] = broken
    return JsonResponse(report, status=200 if serving else 503)
