"""The site as several nodes: two web servers and a worker, started as compose.yaml starts them
(docker-entrypoint.sh prepare, then app twice and worker), on one PostgreSQL database and one shared volume
for media and model versions. Whatever one process does, the others see on their next request."""

import io
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from ml.labels import EXPRESSIONS
from ml.testing import synthetic_crops
from tests.classifier.corpus import face_photo_bytes, two_version_models
from tests.conftest import PASSWORD
from tests.site_processes import deployed_environment, free_port, manage, start_entrypoint, stop, wait_until_healthy

# The reviewed faces a retraining request needs (EMOTIONSITE_RETRAIN.min_faces).
REVIEWED_FACES = 50


class Site:
    """One web server of the site, spoken to as an API client with a token."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def request(self, method: str, path: str, *, data: bytes | None = None, content_type: str = "") -> tuple:
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, method: str, path: str, body: dict | None = None, *, expect: int = 200):
        data = json.dumps(body).encode() if body is not None else None
        status, content = self.request(method, path, data=data, content_type="application/json" if data else "")
        assert status == expect, (method, path, status, content[:500])
        return json.loads(content) if content else None

    def upload(self, image: bytes, name: str = "photo.jpg") -> dict:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, content = self.request(
            "POST", "/api/v1/captures/", data=body, content_type=f"multipart/form-data; boundary={boundary}"
        )
        assert status == 201, (status, content[:500])
        return json.loads(content)


def crop_png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_two_web_servers_and_a_worker_on_one_postgres_database_act_as_one_site(
    postgres_database, tiny_models_dir, tmp_path: Path
):
    shared = tmp_path / "shared-volume"
    environment = deployed_environment(
        database_url=postgres_database,
        model_dir=two_version_models(shared / "models", tiny_models_dir),
        media_dir=shared / "media",
    )
    start_entrypoint("prepare", environment=environment, log=tmp_path / "prepare.log").wait(timeout=120)
    manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.org",
        environment=environment | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )

    ports = [free_port(), free_port()]
    processes = [
        start_entrypoint(
            "app",
            environment=environment | {"EMOTIONSITE_LISTEN": f"127.0.0.1:{port}"},
            log=tmp_path / f"web-{port}.log",
        )
        for port in ports
    ]
    processes.append(start_entrypoint("worker", environment=environment, log=tmp_path / "worker.log"))
    try:
        for port, process in zip(ports, processes, strict=False):
            wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
        one, other = Site(ports[0]), Site(ports[1])
        token = one.json("POST", "/api/v1/auth/token/", {"username": "admin", "password": PASSWORD})["token"]
        one.token = other.token = token

        # A capture made through one is listed, shown, reviewed and deleted through the other.
        made = one.upload(face_photo_bytes())
        assert made["model_version"] == "tiny-2" and len(made["faces"]) == 1
        assert [capture["id"] for capture in other.json("GET", "/api/v1/captures/")["results"]] == [made["id"]]
        status, image = other.request("GET", urlsplit(made["image_url"]).path)
        assert status == 200 and image[:2] == b"\xff\xd8"  # its file, written by the one, is on the shared volume
        face = made["faces"][0]
        other.json("PATCH", f"/api/v1/faces/{face['id']}/", {"true_label": "surprise"})
        assert one.json("GET", f"/api/v1/captures/{made['id']}/")["faces"][0]["true_label"] == "surprise"
        other.json("DELETE", f"/api/v1/captures/{made['id']}/", expect=204)
        one.json("GET", f"/api/v1/captures/{made['id']}/", expect=404)
        assert not any(path.is_file() for path in (shared / "media").rglob("*")), "the capture's files are gone"

        # A version activated through one serves on the other's next request, though it had loaded another.
        assert other.upload(face_photo_bytes())["model_version"] == "tiny-2"
        one.json("POST", "/api/v1/models/tiny-1/activate/")
        assert other.upload(face_photo_bytes())["model_version"] == "tiny-1"
        assert one.upload(face_photo_bytes())["model_version"] == "tiny-1"

        # Reviews through both, a retraining requested through one, run by the worker, seen through the other.
        crops = synthetic_crops(REVIEWED_FACES, seed=1)
        for number, (pixels, label) in enumerate(zip(crops.images, crops.labels, strict=True)):
            site = (one, other)[number % 2]
            crop_face = site.upload(crop_png(pixels), "crop.png")["faces"][0]
            site.json("PATCH", f"/api/v1/faces/{crop_face['id']}/", {"true_label": EXPRESSIONS[label]})
        job = one.json("POST", "/api/v1/training-jobs/", {}, expect=201)
        deadline = time.monotonic() + 180
        while (seen := other.json("GET", f"/api/v1/training-jobs/{job['id']}/"))["state"] in ("queued", "running"):
            assert processes[2].poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"the worker did not finish the job: {seen}"
            time.sleep(0.5)
        assert seen["state"] == "succeeded", seen
        listed = {version["version"]: version for version in other.json("GET", "/api/v1/models/")}
        assert seen["model_version"] in listed
        assert (shared / "models" / seen["model_version"] / "model.json").is_file()
    finally:
        for process in processes:
            stop(process)
