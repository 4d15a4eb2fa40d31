"""Background tasks, run by `python manage.py db_worker` (django.tasks with the django-tasks-db backend)."""

from django.tasks import task

from classifier import retraining, video_reading


@task()
def retrain(job_id: int) -> None:
    """Run training job `job_id`; its row, not the task's result, holds its progress and outcome."""
    retraining.training_job_run(job_id)


@task()
def read_video(video_id: int) -> None:
    """Read video `video_id`; its row, not the task's result, holds its progress and outcome."""
    video_reading.video_read(video_id)
