"""FER2013 accuracy of a model folder against the targets of issue 3 and the published baselines.

    python bench/bench_accuracy.py --model models/VERSION --fer2013 ../shared/datasets/fer2013/fer2013.csv.gz

PublicTest chose the epoch, so PrivateTest is the honest figure. One model, one pass per
crop (no test-time augmentation). Target: PrivateTest accuracy >= 70% (stretch 73%, the
best published single VGG-style nets); the `fer` package's mini-Xception reaches ~66%.
Disgust and fear, the hard classes, are reported on their own.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ml.data import read_fer2013_by_usage
from ml.evaluate import PREDICT_BATCH, evaluate_model, format_metrics
from ml.predictor import Predictor

TARGET, STRETCH, FER_PACKAGE_BASELINE = 0.70, 0.73, 0.66


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--fer2013", required=True, help="the FER2013 CSV, plain or gzipped")
    args = parser.parse_args()

    predictor = Predictor.load(args.model, threads=2)
    print(f"model {predictor.version}, computing in {predictor.computes_in} (ml.runtime: what this CPU offers)")
    for usage, data in read_fer2013_by_usage(args.fer2013, ("PublicTest", "PrivateTest")).items():
        start = time.perf_counter()
        metrics = evaluate_model(predictor, data)
        seconds = time.perf_counter() - start
        print(f"\n{usage} ({seconds / len(data) * 1000:.2f} ms per crop in batches of {PREDICT_BATCH})")
        print(format_metrics(metrics))
    accuracy = metrics["accuracy"]
    verdict = "meets the stretch" if accuracy >= STRETCH else "meets the target" if accuracy >= TARGET else "MISSES"
    print(
        f"\nPrivateTest accuracy {accuracy:.4f}: {verdict} (target {TARGET}, stretch {STRETCH}, "
        f"fer mini-Xception ~{FER_PACKAGE_BASELINE}); recall disgust {metrics['per_class']['disgust']['recall']:.3f}, "
        f"fear {metrics['per_class']['fear']['recall']:.3f}"
    )


if __name__ == "__main__":
    main()
