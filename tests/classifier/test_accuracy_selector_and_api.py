from datetime import UTC, date, datetime

import pytest
from rest_framework.test import APIClient

from classifier import selectors
from classifier.models import ModelVersion
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import face_row

# (predicted, true or None, day, model version)
FACES = [
    ("happy", "happy", 1, "v1"),
    ("happy", "sad", 1, "v1"),
    ("sad", "sad", 1, "v1"),
    ("sad", "sad", 2, "v2"),
    ("angry", "disgust", 2, "v2"),
    ("neutral", "neutral", 2, "v2"),
    ("surprise", None, 2, "v2"),
]


def add_faces(owner, rows, versions: dict[str, ModelVersion]) -> None:
    """Rows straight into the database: the aggregates are what is under test, not the upload."""
    for predicted, true_label, day, version in rows:
        when = datetime(2026, 11, day, 12, tzinfo=UTC)
        face_row(owner, versions[version], predicted=predicted, when=when, true_label=true_label, size=(48, 48))


@pytest.fixture
def versions(db) -> dict[str, ModelVersion]:
    return {
        "v1": ModelVersion.objects.create(version="v1", path="v1", created_at=datetime(2026, 10, 1, tzinfo=UTC)),
        "v2": ModelVersion.objects.create(
            version="v2", path="v2", state="active", created_at=datetime(2026, 10, 20, tzinfo=UTC)
        ),
    }


def test_accuracy_summary_counts_precision_recall_confusion_days_and_versions(user, other_user, versions):
    add_faces(user, FACES, versions)
    add_faces(other_user, [("fear", "fear", 3, "v2")], versions)
    summary = selectors.accuracy_summary(user=user)

    assert (summary.reviewed, summary.correct, summary.unreviewed) == (6, 4, 1)
    assert summary.accuracy == pytest.approx(4 / 6)
    assert summary.labels == EXPRESSIONS
    index = EXPRESSIONS.index
    assert summary.confusion[index("sad")][index("happy")] == 1  # a sad face predicted happy
    assert summary.confusion[index("sad")][index("sad")] == 2
    assert sum(map(sum, summary.confusion)) == 6
    assert summary.per_class["happy"].precision == pytest.approx(1 / 2)
    assert summary.per_class["happy"].recall == pytest.approx(1)
    assert summary.per_class["sad"].recall == pytest.approx(2 / 3)
    assert summary.per_class["sad"].support == 3
    assert summary.per_class["angry"].precision == 0 and summary.per_class["angry"].recall is None
    assert summary.per_class["fear"].support == 0  # the other user's face is not mine
    assert [(day.day, day.reviewed, day.correct) for day in summary.by_day] == [
        (date(2026, 11, 1), 3, 2),
        (date(2026, 11, 2), 3, 2),
    ]
    assert [(v.version, v.reviewed, v.correct, v.unreviewed) for v in summary.by_model_version] == [
        ("v1", 3, 2, 0),
        ("v2", 3, 2, 1),
    ]

    site = selectors.accuracy_summary(user=None)
    assert (site.reviewed, site.correct) == (7, 5)
    since = selectors.accuracy_summary(user=user, since=date(2026, 11, 2))
    assert (since.reviewed, since.correct, since.unreviewed) == (3, 2, 1)


def test_no_reviews_yet_gives_no_accuracy(user, versions):
    add_faces(user, [("happy", None, 1, "v2")], versions)
    summary = selectors.accuracy_summary(user=user)
    assert summary.accuracy is None and summary.reviewed == 0 and summary.unreviewed == 1
    assert all(score.precision is None and score.recall is None for score in summary.per_class.values())


def test_accuracy_summary_takes_three_queries_however_many_faces(user, versions, django_assert_num_queries):
    add_faces(user, FACES, versions)
    with django_assert_num_queries(3):
        selectors.accuracy_summary(user=user)
    add_faces(user, FACES * 10, versions)
    with django_assert_num_queries(3):
        selectors.accuracy_summary(user=user)


def test_accuracy_api_for_me_and_for_the_site(user, staff_user, versions):
    add_faces(user, FACES, versions)
    api = APIClient()
    api.force_authenticate(user)
    body = api.get("/api/v1/accuracy/").json()
    assert body["scope"] == "mine"
    assert (body["reviewed"], body["correct"], body["unreviewed"]) == (6, 4, 1)
    assert body["accuracy"] == pytest.approx(4 / 6)
    assert list(body["per_class"]) == list(EXPRESSIONS)
    assert body["per_class"]["sad"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "support": 3}
    assert body["confusion"]["labels"] == list(EXPRESSIONS)
    assert len(body["confusion"]["matrix"]) == 7 and all(len(row) == 7 for row in body["confusion"]["matrix"])
    assert [row["version"] for row in body["by_model_version"]] == ["v1", "v2"]
    assert body["by_day"][0] == {"day": "2026-11-01", "reviewed": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}
    assert api.get("/api/v1/accuracy/?since=2026-11-02").json()["reviewed"] == 3

    refused = api.get("/api/v1/accuracy/?scope=site")
    assert refused.status_code == 403 and "staff" in refused.json()["detail"]
    assert api.get("/api/v1/accuracy/?since=yesterday").status_code == 400

    api.force_authenticate(staff_user)
    site = api.get("/api/v1/accuracy/?scope=site").json()
    assert site["scope"] == "site" and site["reviewed"] == 6
    assert api.get("/api/v1/accuracy/").json()["reviewed"] == 0  # staff's own faces: none
