"""Several containers starting at once on one database and one volume, as `docker compose up --scale web=4`
starts them after the prepare service: each runs the entrypoint's preparation, which must hold up."""

import filecmp

import pytest

from tests.site_processes import ROOT, deployed_environment, start_entrypoint

CONTAINERS = 4


@pytest.mark.slow
def test_containers_preparing_at_once_each_start_and_copy_the_shipped_models_whole(postgres_database, tmp_path):
    volume = tmp_path / "data"
    environment = deployed_environment(
        database_url=postgres_database, model_dir=volume / "models", media_dir=volume / "media"
    )
    preparing = [
        start_entrypoint("prepare", environment=environment, log=tmp_path / f"prepare-{number}.log")
        for number in range(CONTAINERS)
    ]
    statuses = [process.wait(timeout=180) for process in preparing]
    logs = [(tmp_path / f"prepare-{number}.log").read_text(errors="replace") for number in range(CONTAINERS)]

    assert statuses == [0] * CONTAINERS, logs
    # As the entrypoint's models/*/ finds them: a hidden folder (a job's, the kept predictions) is no version.
    shipped = sorted(
        folder.name for folder in (ROOT / "models").iterdir() if folder.is_dir() and not folder.name.startswith(".")
    )
    assert sorted(path.name for path in (volume / "models").iterdir()) == shipped  # no half-copied folder left
    for name in shipped:
        comparison = filecmp.dircmp(ROOT / "models" / name, volume / "models" / name)
        assert not (comparison.left_only or comparison.right_only or comparison.diff_files), name
