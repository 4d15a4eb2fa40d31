"""The accuracy dashboard: its numbers against hand-computed ones, whose faces count, who sees the whole site."""

from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from classifier import services
from classifier.models import Face, ModelVersion
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import face_row

DASHBOARD = reverse("classifier:accuracy")
ACCURACY_API = reverse("api:accuracy")
NOVEMBER_2 = date(2026, 11, 2)
NOVEMBER_3 = date(2026, 11, 3)


@pytest.fixture
def model_versions(db) -> tuple[ModelVersion, ModelVersion]:
    """An older model version and the active one. The dashboard reads rows, so no model files are needed."""
    older = ModelVersion.objects.create(
        version="v1", path="v1", state=ModelVersion.State.CANDIDATE, created_at=datetime(2026, 10, 1, tzinfo=UTC)
    )
    active = ModelVersion.objects.create(
        version="v2", path="v2", state=ModelVersion.State.ACTIVE, created_at=datetime(2026, 11, 1, tzinfo=UTC)
    )
    return older, active


def add_face(owner: User, model_version: ModelVersion, *, predicted: str, on: date | datetime) -> Face:
    """A capture with one face the model predicted as `predicted`, at noon of `on` unless `on` is a time."""
    when = on if isinstance(on, datetime) else datetime.combine(on, time(12), tzinfo=UTC)
    return face_row(owner, model_version, predicted=predicted, when=when)


def review_through_the_page(client: Client, face: Face, true_label: str) -> None:
    response = client.post(reverse("classifier:face_review", args=[face.pk]), {"true_label": true_label})
    assert response.status_code == 302


class TextById(HTMLParser):
    """The text inside each element that has an id, whitespace collapsed; also checks the tags nest."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.texts: dict[str, str] = {}
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.open.append((tag, dict(attrs).get("id")))
            if dict(attrs).get("id"):
                self.texts.setdefault(dict(attrs)["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            opened, _ = self.open.pop()
            assert opened == tag, f"</{tag}> closes <{opened}>"

    def handle_data(self, data: str) -> None:
        for _, element_id in self.open:
            if element_id:
                self.texts[element_id] += data

    def __getitem__(self, element_id: str) -> str:
        return " ".join(self.texts[element_id].split())

    def __contains__(self, element_id: str) -> bool:
        return element_id in self.texts


def dashboard(client: Client, query: str = "") -> TextById:
    response = client.get(DASHBOARD + query)
    assert response.status_code == 200
    return TextById(response.content.decode())


@pytest.fixture
def reviewed_faces(user: User, user_client: Client, model_versions) -> None:
    """Six reviewed faces and two unreviewed ones of `user`, over two days and two model versions.

    Hand-computed: 4 of 6 right (66.7%); happy precision 2/3, recall 2/2; sad precision 1/1,
    recall 1/2; angry precision 0/1; fear recall 0/1; neutral 1/1 and 1/1.
    """
    older, active = model_versions
    for model_version, day, predicted, true_label in [
        (older, NOVEMBER_2, "happy", "happy"),
        (older, NOVEMBER_2, "happy", "sad"),
        (older, NOVEMBER_2, "angry", "fear"),
        (active, NOVEMBER_3, "happy", "happy"),
        (active, NOVEMBER_3, "sad", "sad"),
        (active, NOVEMBER_3, "neutral", "neutral"),
    ]:
        review_through_the_page(user_client, add_face(user, model_version, predicted=predicted, on=day), true_label)
    add_face(user, active, predicted="surprise", on=NOVEMBER_3)
    add_face(user, active, predicted="fear", on=NOVEMBER_3)


def other_users_reviewed_faces(other_user: User, model_version: ModelVersion) -> None:
    """Three faces of another user, all reviewed wrong, and one unreviewed."""
    for predicted, true_label in [("happy", "angry"), ("sad", "angry"), ("disgust", "fear")]:
        face = add_face(other_user, model_version, predicted=predicted, on=NOVEMBER_3)
        services.face_review(face=face, reviewer=other_user, true_label=true_label)
    add_face(other_user, model_version, predicted="happy", on=NOVEMBER_3)


def test_dashboard_numbers_match_hand_computed_ones(reviewed_faces, user_client: Client) -> None:
    page = dashboard(user_client)

    assert page["accuracy"] == "66.7%"
    assert page["accuracy-interval"] == "95% interval 30%–90%"  # Wilson score interval of 4 of 6
    assert (page["reviewed-count"], page["correct-count"], page["unreviewed-count"]) == ("6", "4", "2")
    assert "empty-state" not in page

    precision = {label: page[f"precision-{label}"] for label in EXPRESSIONS}
    recall = {label: page[f"recall-{label}"] for label in EXPRESSIONS}
    assert precision == {
        "angry": "0.0%",
        "disgust": "—",
        "fear": "—",
        "happy": "66.7%",
        "sad": "100.0%",
        "surprise": "—",
        "neutral": "100.0%",
    }
    assert recall == {
        "angry": "—",
        "disgust": "—",
        "fear": "0.0%",
        "happy": "100.0%",
        "sad": "50.0%",
        "surprise": "—",
        "neutral": "100.0%",
    }

    expected_confusion = {("happy", "happy"): 2, ("sad", "happy"): 1, ("fear", "angry"): 1, ("sad", "sad"): 1}
    expected_confusion[("neutral", "neutral")] = 1
    for true_label in EXPRESSIONS:
        for predicted in EXPRESSIONS:
            expected = expected_confusion.get((true_label, predicted), 0)
            assert page[f"confusion-{true_label}-{predicted}"] == str(expected)

    # Per model version, oldest first: v1 had 1 of 3 right; v2 3 of 3, and 2 faces still unreviewed.
    assert page["model-version-1"] == "v1 3 1 33.3% 0"
    assert page["model-version-2"] == "v2 active 3 3 100.0% 2"
    assert "model-version-3" not in page


def test_api_numbers_match_hand_computed_ones(reviewed_faces, user_client: Client) -> None:
    response = user_client.get(ACCURACY_API)

    assert response.status_code == 200
    body = response.json()
    assert (body["scope"], body["reviewed"], body["correct"], body["unreviewed"]) == ("mine", 6, 4, 2)
    assert body["accuracy"] == pytest.approx(4 / 6)
    assert body["per_class"]["happy"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "support": 2}
    assert body["per_class"]["sad"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert body["per_class"]["angry"] == {"precision": 0.0, "recall": None, "support": 0}
    assert body["per_class"]["fear"] == {"precision": None, "recall": 0.0, "support": 1}
    matrix = body["confusion"]["matrix"]
    assert body["confusion"]["labels"] == list(EXPRESSIONS)
    assert sum(map(sum, matrix)) == 6
    index = EXPRESSIONS.index
    assert matrix[index("happy")][index("happy")] == 2
    assert matrix[index("sad")][index("happy")] == 1
    assert matrix[index("fear")][index("angry")] == 1
    assert [(day["day"], day["reviewed"], day["correct"]) for day in body["by_day"]] == [
        ("2026-11-02", 3, 1),
        ("2026-11-03", 3, 3),
    ]
    by_model_version = [
        (row["version"], row["reviewed"], row["correct"], row["unreviewed"]) for row in body["by_model_version"]
    ]
    assert by_model_version == [("v1", 3, 1, 0), ("v2", 3, 3, 2)]


def test_accuracy_per_day_is_drawn_and_tabled(reviewed_faces, user_client: Client) -> None:
    response = user_client.get(DASHBOARD)

    content = response.content.decode()
    assert 'aria-label="Accuracy per day over 2 days with reviews, from 2 November 2026 to 3 November 2026;' in content
    assert "<title>2 Nov 2026: 33% of 3 reviewed</title>" in content
    assert "<title>3 Nov 2026: 100% of 3 reviewed</title>" in content
    assert '<tr><th scope="row">2 Nov 2026</th><td>3</td><td>1</td><td>33.3%</td></tr>' in content


def test_one_review_is_enough_for_every_chart(user: User, user_client: Client, model_versions) -> None:
    face = add_face(user, model_versions[1], predicted="sad", on=NOVEMBER_3)
    services.face_review(face=face, reviewer=user, true_label="happy")

    response = user_client.get(DASHBOARD)

    content = response.content.decode()
    assert "over 1 day with reviews, from 3 November 2026 to 3 November 2026" in content
    assert "<title>3 Nov 2026: 0% of 1 reviewed</title>" in content
    page = TextById(content)
    assert (page["accuracy"], page["confusion-happy-sad"], page["recall-happy"]) == ("0.0%", "1", "0.0%")


def test_other_users_reviews_never_count(reviewed_faces, user_client: Client, other_user: User, model_versions) -> None:
    other_users_reviewed_faces(other_user, model_versions[1])

    page = dashboard(user_client)

    assert (page["accuracy"], page["reviewed-count"], page["unreviewed-count"]) == ("66.7%", "6", "2")
    assert page["confusion-angry-happy"] == "0"
    assert page["precision-disgust"] == "—"


def test_staff_see_the_whole_site(reviewed_faces, other_user: User, staff_user: User, model_versions) -> None:
    other_users_reviewed_faces(other_user, model_versions[1])
    client = Client()
    client.force_login(staff_user)

    own = dashboard(client)
    site = dashboard(client, "?scope=site")

    assert (own["reviewed-count"], own["unreviewed-count"]) == ("0", "0")
    assert "empty-state" in own
    # Everyone's: 4 of 9 right, 3 unreviewed.
    assert (site["accuracy"], site["reviewed-count"], site["correct-count"], site["unreviewed-count"]) == (
        "44.4%",
        "9",
        "4",
        "3",
    )
    assert site["confusion-angry-happy"] == "1"
    assert site["precision-disgust"] == "0.0%"


def test_staff_have_a_toggle_and_users_do_not(reviewed_faces, user_client: Client, staff_user: User) -> None:
    staff_client = Client()
    staff_client.force_login(staff_user)

    assert 'aria-label="Whose faces"' in staff_client.get(DASHBOARD).content.decode()
    assert f'href="{DASHBOARD}?scope=site"' in staff_client.get(DASHBOARD).content.decode()
    assert 'aria-label="Whose faces"' not in user_client.get(DASHBOARD).content.decode()


def test_a_user_cannot_get_the_whole_site(reviewed_faces, user_client: Client) -> None:
    assert user_client.get(DASHBOARD + "?scope=site").status_code == 403


def test_api_gives_the_whole_site_to_staff_only(reviewed_faces, user_client: Client, staff_user: User) -> None:
    staff_client = Client()
    staff_client.force_login(staff_user)

    assert user_client.get(ACCURACY_API, {"scope": "site"}).status_code == 403
    site = staff_client.get(ACCURACY_API, {"scope": "site"}).json()
    assert (site["scope"], site["reviewed"], site["unreviewed"]) == ("site", 6, 2)


def test_signed_out_visitor_is_sent_to_sign_in(db) -> None:
    response = Client().get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_period_keeps_only_recent_faces(user: User, user_client: Client, model_versions) -> None:
    now = timezone.now()
    for days_ago, predicted, true_label in [(2, "happy", "happy"), (40, "happy", "sad"), (100, "sad", "angry")]:
        face = add_face(user, model_versions[1], predicted=predicted, on=now - timedelta(days=days_ago))
        services.face_review(face=face, reviewer=user, true_label=true_label)

    assert dashboard(user_client)["reviewed-count"] == "3"
    assert dashboard(user_client, "?days=90")["reviewed-count"] == "2"
    last_30_days = dashboard(user_client, "?days=30")
    assert (last_30_days["reviewed-count"], last_30_days["accuracy"]) == ("1", "100.0%")
    assert dashboard(user_client, "?days=7000")["reviewed-count"] == "3"  # not a choice: all time


def test_empty_state_before_any_review(user: User, user_client: Client, model_versions) -> None:
    page = dashboard(user_client)

    assert "No reviews yet" in page["empty-state"]
    assert "Upload a photo" in page["empty-state"]
    assert page["accuracy"] == "—"
    assert "confusion" not in page

    add_face(user, model_versions[1], predicted="happy", on=NOVEMBER_3)
    page = dashboard(user_client)

    assert "Review your 1 unreviewed face" in page["empty-state"]
    assert page["unreviewed-count"] == "1"


def dashboard_queries(client: Client, query: str = "") -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(DASHBOARD + query).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("query", ["", "?scope=site", "?days=30"])
def test_query_count_does_not_grow_with_faces(staff_user: User, model_versions, query: str) -> None:
    client = Client()
    client.force_login(staff_user)

    def add_reviewed_faces(count: int, start: int) -> None:
        for number in range(start, start + count):
            face = add_face(
                staff_user,
                model_versions[number % 2],
                predicted=EXPRESSIONS[number % 7],
                on=timezone.now() - timedelta(days=number % 20),
            )
            services.face_review(face=face, reviewer=staff_user, true_label=EXPRESSIONS[(number * 3) % 7])

    add_reviewed_faces(10, 0)
    with_10_faces = dashboard_queries(client, query)
    add_reviewed_faces(90, 10)
    with_100_faces = dashboard_queries(client, query)

    assert with_100_faces == with_10_faces
    assert with_10_faces <= 6  # session, user, and the summary's three grouped queries
