import pytest
from rest_framework.test import APIClient

from classifier.models import Face
from tests.classifier.corpus import make_capture


def test_review_a_face_right_then_change_my_mind(api, user, model_version):
    face = make_capture(user).faces.get()
    response = api.patch(f"/api/v1/faces/{face.pk}/", {"true_label": face.predicted_label}, format="json")
    assert response.status_code == 200
    assert response.json()["true_label"] == face.predicted_label and response.json()["is_correct"] is True

    other = "sad" if face.predicted_label != "sad" else "happy"
    body = api.patch(f"/api/v1/faces/{face.pk}/", {"true_label": other}, format="json").json()
    assert body["true_label"] == other and body["is_correct"] is False
    face.refresh_from_db()
    assert face.reviewed_by == user and face.reviewed_at is not None

    body = api.patch(f"/api/v1/faces/{face.pk}/", {"true_label": None}, format="json").json()
    assert body["true_label"] is None and body["is_correct"] is None
    face.refresh_from_db()
    assert face.reviewed_by is None and face.reviewed_at is None


@pytest.mark.parametrize("payload", [{"true_label": "bored"}, {}, {"true_label": 3}])
def test_a_bad_label_is_400_and_changes_nothing(api, user, model_version, payload):
    face = make_capture(user).faces.get()
    response = api.patch(f"/api/v1/faces/{face.pk}/", payload, format="json")
    assert response.status_code == 400
    assert "true_label" in response.json()
    face.refresh_from_db()
    assert face.true_label is None


def test_another_users_face_is_404(api, other_user, model_version):
    face = make_capture(other_user).faces.get()
    response = api.patch(f"/api/v1/faces/{face.pk}/", {"true_label": "sad"}, format="json")
    assert response.status_code == 404
    assert api.get(f"/api/v1/faces/{face.pk}/").status_code == 404
    assert Face.objects.get(pk=face.pk).true_label is None


def test_put_is_not_allowed(api, user, model_version):
    face = make_capture(user).faces.get()
    assert api.put(f"/api/v1/faces/{face.pk}/", {"true_label": "sad"}, format="json").status_code == 405


def test_models_lists_versions_with_metrics_and_the_active_one(api, model_version):
    [version] = api.get("/api/v1/models/").json()
    assert version["version"] == "tiny-1" and version["is_active"] is True and version["state"] == "active"
    assert "validation_accuracy" in version["metrics"]


def test_schema_and_docs_are_served_without_a_cdn(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/captures/", "/api/v1/faces/{id}/", "/api/v1/accuracy/", "/api/v1/models/"} <= set(paths)
    docs = api.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "/static/drf_spectacular_sidecar/" in docs
    assert "cdn" not in docs.lower()


def test_schema_says_a_model_version_may_have_no_parent(api, model_version):
    # The shipped model has none, so every client validating /api/v1/models/ against the schema would fail.
    assert api.get("/api/v1/models/").json()[0]["parent"] is None
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["schemas"]["ModelVersion"]["properties"]["parent"]["nullable"] is True


def test_the_schema_has_a_page_to_read_in_a_browser(client):
    page = client.get("/api/reference/")

    assert page.status_code == 200 and "/api/schema/" in page.content.decode()


def test_json_nested_too_deep_is_a_400_not_a_500(api, user, model_version):
    deep = "[" * 2000 + "]" * 2000
    token = APIClient().post("/api/v1/auth/token/", deep, content_type="application/json")
    face = make_capture(user).faces.get()
    review = api.patch(f"/api/v1/faces/{face.pk}/", deep, content_type="application/json")

    for response in (token, review):
        assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
