"""Measure how the learning loop moves a new population: the Taiwanese posed set, split by performer.

    python bench/bench_adaptation.py --taiwanese ../shared/datasets/taiwanese --fer2013 PATH
        [--model models/fer2013-vgg48-v5] [--reference] [--curve 50,100,200,400,all]
        [--order random|least-confident] [--set epochs=10 --set learning_rate=0.003 ...]

A throwaway site (bench/shared.py) with --model active. The performers are split by a seeded draw:
REVIEWED_PERFORMERS of them are the site's users, the rest are never uploaded. The users' photos
are uploaded through capture_create, in a seeded random order; for each point of --curve, the
first N of them are reviewed through face_review with their true expression (the largest face of
a photo; a photo with no face found cannot be reviewed), the base version is made active again,
and a job retrains it as the worker runs it (retrain_request, then training_job_run), with the
site's EMOTIONSITE_RETRAIN and any --set changes. --order least-confident reviews the photos the
active version is least sure of first, as the review queue offers them.

Printed per point: the candidate's and the then active version's accuracy on the unseen
performers' photos (whole photos: decoded, searched by find_faces, classified; a photo with no
face found counts as wrong) and on FER2013 PrivateTest, the gate's decision, and the time; then
the candidate's recall per expression on the unseen performers (the base version's comes first), and its
expected calibration error there (15 bins, on the faces found).
The Taiwanese set's licence allows evaluation only: nothing trained here is ever shipped.

Measured 4 Dec 2026 with --reference --curve all (2-core AMD EPYC with AVX2, beside a training run): v5
reads the unseen performers at 52.0% with an expected calibration error of 0.136; after 829 reviews the
candidate reads them at 62.4% with 0.062 (activated; PrivateTest 71.5% -> 70.8%). Retraining on a
population calibrates the model's confidence on it too.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from shared import changed_settings, scratch_site  # noqa: E402  (this folder is on sys.path when run as a script)

import ml  # noqa: E402, F401  (first: ml.runtime sets the OpenMP and MKL environment Paddle reads at import)
from ml.data import TAIWANESE_CODES, TAIWANESE_NAME  # noqa: E402

REVIEWED_PERFORMERS = 20
SPLIT_SEED = 0


def photos_by_performer(folder: Path) -> dict[str, list[tuple[Path, str]]]:
    performers: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted((folder / "faces_256x256").glob("*.jpg")):
        match = TAIWANESE_NAME.match(path.name)
        if match:  # PPTVeNN.jpg: performer PP, expression letter e
            performers.setdefault(path.name[:2], []).append((path, TAIWANESE_CODES[match["code"].lower()]))
    return performers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taiwanese", type=Path, required=True, help="the Taiwanese posed set's folder")
    parser.add_argument("--fer2013", type=Path, required=True, help="the FER2013 CSV: PrivateTest, and --reference")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fer2013-vgg48-v5")
    parser.add_argument("--reference", action="store_true", help="mix the FER2013 Training rows into retraining")
    parser.add_argument("--curve", default="50,100,200,400,all", help="review counts to retrain after")
    parser.add_argument("--order", choices=("random", "least-confident"), default="random")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an EMOTIONSITE_RETRAIN field")
    args = parser.parse_args()
    model, fer2013 = args.model.resolve(), args.fer2013.resolve()

    with scratch_site(model, reference_data=fer2013 if args.reference else None, prefix="bench-adaptation-"):
        import numpy as np
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile
        from PIL import Image

        from accounts.models import User
        from classifier import retraining, selectors, services
        from classifier.inference import model_folder
        from classifier.models import ModelVersion, TrainingJob
        from ml.calibration import expected_calibration_error
        from ml.data import read_fer2013_by_usage
        from ml.evaluate import evaluate_model, predict_all
        from ml.faces import find_faces
        from ml.labels import EXPRESSIONS, INDEX_OF
        from ml.predictor import Predictor

        settings.EMOTIONSITE_RETRAIN = changed_settings(settings.EMOTIONSITE_RETRAIN, args.set)
        services.model_versions_register()
        base = ModelVersion.objects.get(state=ModelVersion.State.ACTIVE)
        performers = photos_by_performer(args.taiwanese)
        drawn = list(np.random.default_rng(SPLIT_SEED).permutation(sorted(performers)))
        reviewed_people, unseen_people = drawn[:REVIEWED_PERFORMERS], drawn[REVIEWED_PERFORMERS:]
        users_photos = [photo for person in reviewed_people for photo in performers[person]]
        unseen_photos = [photo for person in unseen_people for photo in performers[person]]
        print(f"model {base.version}; retraining settings {settings.EMOTIONSITE_RETRAIN}")
        print(f"reference data: {settings.EMOTIONSITE_REFERENCE_DATA or 'none'}; review order: {args.order}")
        print(
            f"performers reviewed: {len(reviewed_people)} ({len(users_photos)} photos), "
            f"unseen: {len(unseen_people)} ({len(unseen_photos)} photos: {', '.join(sorted(unseen_people))})"
        )

        # The unseen photos' crops, as capture_create would cut them; None when no face is found.
        unseen_crops, unseen_labels = [], []
        for path, label in unseen_photos:
            faces = find_faces(Image.open(path)).faces
            largest = max(faces, key=lambda face: face.box[2] * face.box[3], default=None)
            unseen_crops.append(None if largest is None else largest.crop)
            unseen_labels.append(INDEX_OF[label])
        found = np.array([crop is not None for crop in unseen_crops])
        crops = np.stack([crop for crop in unseen_crops if crop is not None])
        labels = np.array(unseen_labels)
        private_test = read_fer2013_by_usage(fer2013, ("PrivateTest",))["PrivateTest"]
        print(f"unseen photos with a face found: {found.sum()} of {len(found)}")

        recalls_read = {}  # a version's recall per expression on the unseen performers, by version
        calibration_read = {}  # its expected calibration error on their faces found, by version

        def unseen_accuracy(predictor: Predictor) -> float:
            probabilities = predict_all(predictor, crops)
            predicted = np.full(len(labels), -1)
            predicted[found] = probabilities.argmax(axis=1)
            right = predicted == labels
            recalls_read[predictor.version] = {
                name: right[labels == index].mean() for index, name in enumerate(EXPRESSIONS) if (labels == index).any()
            }
            calibration_read[predictor.version] = expected_calibration_error(probabilities, labels[found])
            return float(right.mean())

        def recalls(version: ModelVersion) -> str:
            recall = " ".join(f"{name} {recall:.0%}" for name, recall in recalls_read[version.version].items())
            return f"{recall}; expected calibration error {calibration_read[version.version]:.3f}"

        def figures(version: ModelVersion) -> tuple[float, float]:
            predictor = Predictor.load(model_folder(version), threads=1)
            return unseen_accuracy(predictor), evaluate_model(predictor, private_test)["accuracy"]

        base_unseen, base_private = figures(base)
        print(f"before: unseen performers {base_unseen:.1%}, FER2013 PrivateTest {base_private:.1%}")
        print(f"  recall on the unseen performers: {recalls(base)}\n")

        owner = User.objects.create_user("bench", password="unused-bench-password", is_staff=True)
        started = time.perf_counter()
        uploads = []
        order = np.random.default_rng(SPLIT_SEED + 1).permutation(len(users_photos))
        for index in order:
            path, label = users_photos[index]
            capture = services.capture_create(owner=owner, image=SimpleUploadedFile(path.name, path.read_bytes()))
            largest = max(capture.faces.all(), key=lambda face: face.box_width * face.box_height, default=None)
            if largest is not None:
                uploads.append((largest, label))
        print(f"uploaded {len(order)} photos in {time.perf_counter() - started:.1f} s; {len(uploads)} with a face")
        if args.order == "least-confident":
            uploads.sort(key=lambda upload: upload[0].confidence)

        points = [len(uploads) if point == "all" else min(int(point), len(uploads)) for point in args.curve.split(",")]
        header = f"{'reviews':>7} {'unseen: candidate':>18} {'active':>7} {'PrivateTest: cand.':>19} {'active':>7}"
        print(header + "  seconds  decision")
        reviewed = 0
        for point in points:
            for face, label in uploads[reviewed:point]:
                services.face_review(face=face, reviewer=owner, true_label=label)
            reviewed = max(reviewed, point)
            if selectors.active_model_version() != base:  # the last point's candidate went live
                services.model_version_activate(model_version=base)
            started = time.perf_counter()
            job = services.retrain_request(requested_by=owner, base_version=base, use_reference_data=args.reference)
            retraining.training_job_run(job.pk)
            seconds = time.perf_counter() - started
            job.refresh_from_db()
            if job.state != TrainingJob.State.SUCCEEDED:
                print(f"{point:>7} job {job.state}: {job.error}")
                continue
            candidate_unseen, candidate_private = figures(job.model_version)
            active = ModelVersion.objects.get(state=ModelVersion.State.ACTIVE)
            active_unseen, active_private = (
                (candidate_unseen, candidate_private) if active == job.model_version else (base_unseen, base_private)
            )
            verdict = job.model_version.decision.split(":")[0]
            print(
                f"{point:>7} {candidate_unseen:>18.1%} {active_unseen:>7.1%} {candidate_private:>19.1%}"
                f" {active_private:>7.1%}  {seconds:7.1f}  {verdict}",
                flush=True,
            )
            print(f"        candidate's recall on the unseen performers: {recalls(job.model_version)}", flush=True)
        print(f"\nlast decision in full: {job.model_version.decision if job.model_version else job.error}")


if __name__ == "__main__":
    main()
