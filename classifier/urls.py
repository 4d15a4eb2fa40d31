from django.urls import path

from classifier import views

app_name = "classifier"

urlpatterns = [
    path("", views.home, name="capture_new"),
    path("webcam/", views.capture_webcam, name="capture_webcam"),
    path("captures/", views.capture_list, name="capture_list"),
    path("captures/export.csv", views.export, {"kind": "csv"}, name="export_csv"),
    path("captures/export.json", views.export, {"kind": "json"}, name="export_json"),
    path("captures/reviewed-faces.zip", views.export, {"kind": "crops"}, name="export_crops"),
    path("captures/<int:capture_id>/", views.capture_detail, name="capture_detail"),
    path("captures/<int:capture_id>/delete/", views.capture_delete, name="capture_delete"),
    path("captures/<int:capture_id>/image.jpg", views.capture_image, {"kind": "image"}, name="capture_image"),
    path(
        "captures/<int:capture_id>/thumbnail.jpg", views.capture_image, {"kind": "thumbnail"}, name="capture_thumbnail"
    ),
    path("videos/", views.video_list, name="video_list"),
    path("videos/<int:video_id>/", views.video_detail, name="video_detail"),
    path("videos/<int:video_id>/delete/", views.video_delete, name="video_delete"),
    path("faces/<int:face_id>/review/", views.face_review, name="face_review"),
    path("faces/<int:face_id>/image.jpg", views.face_image, name="face_image"),
    path("review/", views.review_queue, name="review_queue"),
    path("review/<int:face_id>/", views.review_queue_review, name="review_queue_review"),
    path("review/<int:face_id>/skip/", views.review_queue_skip, name="review_queue_skip"),
    path("review/undo/", views.review_queue_undo, name="review_queue_undo"),
    path("accuracy/", views.accuracy, name="accuracy"),
    path("staff/training/", views.training, name="training"),
    path("staff/training/retrain/", views.retrain, name="retrain"),
    path("staff/training/jobs/<int:job_id>/cancel/", views.training_job_cancel, name="training_job_cancel"),
    path(
        "staff/training/versions/<int:version_id>/activate/",
        views.model_version_activate,
        name="model_version_activate",
    ),
]
