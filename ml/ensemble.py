"""Make an ensemble version: `python -m ml.ensemble --member DIR --member DIR ... --out DIR --version NAME`.

The new folder's net is the members' nets read as one (`ml.model.EnsembleNet`: the mean of their logits),
exported as one graph, so `ml.predictor` serves it as it serves one net, and a retraining job fine-tunes it
whole. Each member is an exported model folder, trained apart from the others (another seed, another
working size): nets whose errors differ are what an ensemble gains from. The folder is read in one plain
pass; `python -m ml.calibrate --mirror` then makes the version that ships, mirrored and calibrated.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import paddle

from ml.export import export_model
from ml.model_folder import WEIGHTS_FILE, ModelFolderError, check_files, read_metadata
from ml.train import net_config_from_json


def ensemble_model(members: list[str | Path], out_dir: str | Path, *, version: str) -> Path:
    """Write `out_dir/version`, the ensemble of these model folders' nets; return its path."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, not {len(members)}")
    configs, weights, summaries = [], {}, []
    for index, folder in enumerate(members):
        metadata = read_metadata(folder)
        check_files(folder, metadata, [WEIGHTS_FILE])
        config = net_config_from_json(metadata["model_config"])
        if isinstance(config, tuple):
            raise ValueError(f"{folder} is an ensemble already; give its members instead")
        configs.append(config)
        weights |= {
            f"members.{index}.{name}": value for name, value in paddle.load(str(Path(folder) / WEIGHTS_FILE)).items()
        }
        summaries.append(
            {
                "version": metadata["version"],
                "metrics": metadata.get("metrics", {}),
                "training": metadata.get("training", {}),
            }
        )
    with tempfile.TemporaryDirectory() as scratch:
        combined = Path(scratch) / WEIGHTS_FILE
        paddle.save(weights, str(combined))
        return export_model(combined, tuple(configs), out_dir, version=version, training={"members": summaries})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml.ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("--member", action="append", required=True, help="a member's model folder (two or more)")
    parser.add_argument("--out", required=True, help="models folder; the new version is written as a subfolder")
    parser.add_argument("--version", required=True, help="the new version's name")
    args = parser.parse_args(argv)
    try:
        print(ensemble_model(args.member, args.out, version=args.version))
    except (FileExistsError, ValueError, ModelFolderError) as error:
        sys.exit(f"ml.ensemble: {error}")


if __name__ == "__main__":
    main()
