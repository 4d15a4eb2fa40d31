"""The admin as staff use it: a capture's images, deleting model versions, and the model version list."""

import io
from html.parser import HTMLParser

from django.contrib.auth.models import Permission
from django.test import Client
from PIL import Image

from tests.classifier.corpus import make_capture
from tests.conftest import make_user


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
