"""The admin as staff use it: a capture's images, deleting model versions, and the model version list."""

import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from PIL import Image

from classifier import services
from classifier.models import ModelVersion
from tests.classifier.corpus import make_capture, two_version_models
from tests.conftest import make_user

CHANGELIST = "/admin/classifier/modelversion/"


class LinksAndImages(HTMLParser):
    """Every link's href and every image's src in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.srcs.append(attributes["src"])


def links_and_images(page: str) -> LinksAndImages:
    parser = LinksAndImages()
    parser.feed(page)
    return parser


def jpeg_size(response) -> tuple[int, int]:
    """The size of the JPEG a response carries, as Pillow reads it."""
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.format == "JPEG"
    return image.size


# A capture's images


def test_a_captures_admin_page_links_its_image_and_thumbnail_and_both_load(admin_client, user, model_version):
    capture = make_capture(user)
    page = admin_client.get(f"/admin/classifier/capture/{capture.pk}/change/").content.decode()

    assert "/private-media/" not in page  # the raw file fields: no URL serves that folder
    found = links_and_images(page)
    image_url, thumbnail_url = f"/captures/{capture.pk}/image.jpg", f"/captures/{capture.pk}/thumbnail.jpg"
    assert image_url in found.hrefs and thumbnail_url in found.hrefs
    assert thumbnail_url in found.srcs
    sizes = {url: jpeg_size(admin_client.get(url)) for url in {*found.hrefs, *found.srcs} if "/captures/" in url}
    assert set(sizes) == {image_url, thumbnail_url}
    assert sizes[image_url] == (capture.width, capture.height)
    assert max(sizes[thumbnail_url]) <= max(sizes[image_url])


def test_staff_who_may_only_view_captures_load_the_images_the_admin_links(user, model_version):
    capture = make_capture(user)
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_capture"))
    client = Client()
    client.force_login(viewer)

    page = client.get(f"/admin/classifier/capture/{capture.pk}/change/").content.decode()
    urls = {url for url in links_and_images(page).hrefs if url.startswith(f"/captures/{capture.pk}/")}
    assert urls == {f"/captures/{capture.pk}/image.jpg", f"/captures/{capture.pk}/thumbnail.jpg"}
    for url in urls:
        jpeg_size(client.get(url))


# Deleting model versions


@pytest.fixture
def two_versions(db, tmp_path: Path, tiny_models_dir: Path, settings) -> Path:
    """tiny-1 and tiny-2 in a fresh models folder, registered: tiny-2, the newer, is active, tiny-1 a candidate."""
    models_dir = two_version_models(tmp_path / "models", tiny_models_dir)
    settings.EMOTIONSITE_MODEL_DIR = models_dir
    services.model_versions_register()
    assert ModelVersion.objects.get(state="active").version == "tiny-2"
    return models_dir


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_admin_refuses_to_delete_the_active_version_from_its_delete_page(admin_client, two_versions):
    active = ModelVersion.objects.get(version="tiny-2")
    delete_page = f"{CHANGELIST}{active.pk}/delete/"
    for response in (admin_client.get(delete_page, follow=True), admin_client.post(delete_page, {"post": "yes"})):
        response = admin_client.get(response["Location"]) if response.status_code == 302 else response
        assert response.status_code == 200
        assert any(
            "Model version tiny-2 is the active one, so it cannot be deleted" in text
            and "activate another version first" in text
            for text in messages_of(response)
        ), messages_of(response)

    assert ModelVersion.objects.get(pk=active.pk).state == "active"
    assert (two_versions / "tiny-2" / "model.json").is_file()


def test_the_admin_refuses_to_bulk_delete_a_selection_holding_the_active_version(admin_client, two_versions):
    selection = list(ModelVersion.objects.values_list("pk", flat=True))
    for confirmed in ({}, {"post": "yes"}):
        response = admin_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": selection, **confirmed}, follow=True
        )
        assert response.status_code == 200
        assert any("activate another version first" in text for text in messages_of(response))
        assert not any("Successfully deleted" in text for text in messages_of(response))

    assert ModelVersion.objects.count() == 2
    assert (two_versions / "tiny-1").is_dir() and (two_versions / "tiny-2").is_dir()


def test_the_service_refuses_to_delete_the_active_version(two_versions, run_on_commit):
    with run_on_commit(), pytest.raises(services.DeleteRefused, match="activate another version first"):
        services.model_version_delete(model_version=ModelVersion.objects.get(version="tiny-2"))
    assert ModelVersion.objects.get(version="tiny-2").state == "active"


def test_deleting_a_candidate_in_the_admin_removes_its_row_and_folder_for_good(
    admin_client, two_versions, run_on_commit
):
    candidate = ModelVersion.objects.get(version="tiny-1")
    assert "Are you sure" in admin_client.get(f"{CHANGELIST}{candidate.pk}/delete/").content.decode()

    with run_on_commit():
        response = admin_client.post(f"{CHANGELIST}{candidate.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("was deleted" in text for text in messages_of(response))
    assert any(f"its folder {two_versions / 'tiny-1'} was removed" in text for text in messages_of(response))
    assert not (two_versions / "tiny-1").exists()

    services.model_versions_register()  # what every start and a fresh site's first request run
    assert list(ModelVersion.objects.values_list("version", flat=True)) == ["tiny-2"]
    assert (two_versions / "tiny-2" / "model.json").is_file()


def test_bulk_deleting_candidates_removes_their_rows_and_folders(admin_client, two_versions, run_on_commit):
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-1"))
    tiny_2 = ModelVersion.objects.get(version="tiny-2")  # previous now, and no face names it
    with run_on_commit():
        response = admin_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [tiny_2.pk], "post": "yes"}, follow=True
        )
    assert any("Successfully deleted 1 model version" in text for text in messages_of(response))
    assert not (two_versions / "tiny-2").exists()
    services.model_versions_register()
    assert list(ModelVersion.objects.values_list("version", flat=True)) == ["tiny-1"]


@pytest.mark.parametrize("stored_path", ["absolute", "climbs out"])
def test_a_folder_outside_the_models_folder_is_left_and_the_admin_says_so(
    admin_client, two_versions, tmp_path, tiny_models_dir, run_on_commit, stored_path
):
    elsewhere = tmp_path / "elsewhere" / "tiny-out"
    shutil.copytree(tiny_models_dir / "tiny-1", elsewhere)
    path = str(elsewhere) if stored_path == "absolute" else "../elsewhere/tiny-out"
    outside = ModelVersion.objects.create(version="tiny-out", path=path, state="candidate")

    with run_on_commit():
        response = admin_client.post(f"{CHANGELIST}{outside.pk}/delete/", {"post": "yes"}, follow=True)
    assert not ModelVersion.objects.filter(version="tiny-out").exists()
    assert (elsewhere / "model.json").is_file()
    assert any(
        f"its folder {elsewhere} is outside EMOTIONSITE_MODEL_DIR ({two_versions}) and was left in place" in text
        for text in messages_of(response)
    ), messages_of(response)


def test_a_linked_folder_loses_only_its_link(admin_client, two_versions, tmp_path, tiny_models_dir, run_on_commit):
    elsewhere = tmp_path / "elsewhere" / "tiny-linked"
    shutil.copytree(tiny_models_dir / "tiny-1", elsewhere)
    metadata = json.loads((elsewhere / "model.json").read_text())
    (elsewhere / "model.json").write_text(json.dumps(metadata | {"version": "tiny-linked"}))
    (two_versions / "tiny-linked").symlink_to(elsewhere)
    services.model_versions_register()
    linked = ModelVersion.objects.get(version="tiny-linked")

    with run_on_commit():
        admin_client.post(f"{CHANGELIST}{linked.pk}/delete/", {"post": "yes"})
    assert not (two_versions / "tiny-linked").exists() and (elsewhere / "model.json").is_file()
    services.model_versions_register()
    assert not ModelVersion.objects.filter(version="tiny-linked").exists()


def test_the_service_says_why_a_version_that_predicted_faces_stays(user, two_versions, media_dir, run_on_commit):
    tiny_2 = ModelVersion.objects.get(version="tiny-2")
    make_capture(user)
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-1"))
    with run_on_commit(), pytest.raises(services.DeleteRefused, match="1 captures and 1 faces were classified by it"):
        services.model_version_delete(model_version=tiny_2)
    assert ModelVersion.objects.filter(pk=tiny_2.pk).exists()
    assert (two_versions / "tiny-2" / "model.json").is_file()


def test_a_version_that_predicted_faces_is_not_deleted_and_the_admin_says_why(
    admin_client, user, two_versions, media_dir, run_on_commit
):
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-1"))
    make_capture(user)  # predicted by tiny-1
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-2"))
    tiny_1 = ModelVersion.objects.get(version="tiny-1")

    delete_page = f"{CHANGELIST}{tiny_1.pk}/delete/"
    with run_on_commit():
        responses = [
            admin_client.get(delete_page),
            admin_client.post(delete_page, {"post": "yes"}),
            admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [tiny_1.pk]}),
            admin_client.post(
                CHANGELIST, {"action": "delete_selected", "_selected_action": [tiny_1.pk], "post": "yes"}
            ),
        ]
    for response in responses:
        assert response.status_code == 200
        page = response.content.decode()
        assert "Cannot delete model version" in page
        assert "would require deleting the following protected related objects" in page
        assert "Face " in page and "Capture " in page
        assert "each prediction names the version that made it" in page  # why, not only what
    assert ModelVersion.objects.filter(pk=tiny_1.pk).exists()
    assert (two_versions / "tiny-1" / "model.json").is_file()


def test_a_model_versions_activation_time_cannot_be_edited_in_the_admin(admin_client, two_versions):
    active = ModelVersion.objects.get(state="active")
    page = admin_client.get(f"{CHANGELIST}{active.pk}/change/").content.decode()
    assert 'name="activated_at_0"' not in page

    admin_client.post(f"{CHANGELIST}{active.pk}/change/", {"activated_at_0": "2000-01-01", "activated_at_1": "00:00"})
    assert ModelVersion.objects.get(pk=active.pk).activated_at == active.activated_at


# The model version list


def test_the_model_version_list_shows_each_kind_of_accuracy_in_its_own_column(admin_client, two_versions):
    tiny_2 = ModelVersion.objects.get(version="tiny-2")
    tiny_2.metrics = {
        "validation_accuracy": 0.6841,
        "held_out": {
            "count": 40,
            "active_version": "tiny-1",
            "candidate": {"accuracy": 0.625, "macro_f1": 0.6, "recall": {}},
            "active": {"accuracy": 0.55, "macro_f1": 0.5, "recall": {}},
        },
    }
    tiny_2.save()
    ModelVersion.objects.filter(version="tiny-1").update(metrics={"validation_accuracy": 0.5})

    page = admin_client.get(CHANGELIST).content.decode()
    assert "Held-out reviewed faces: this vs active" in page and "Validation accuracy (training run)" in page
    assert "62.5% vs 55.0% (40)" in page  # the candidate, then the version active when it was trained
    assert "68.4%" in page and "50.0%" in page
    rows = {row.split("</th>")[0]: row for row in page.split('<th class="field-version">')[1:]}
    tiny_1_row = next(row for version, row in rows.items() if "tiny-1" in version)
    assert '<td class="field-held_out_accuracy">–</td>' in tiny_1_row  # never compared: shipped or registered
