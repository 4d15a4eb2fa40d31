"""Background tasks, run by `python manage.py db_worker` (django.tasks with the django-tasks-db backend)."""

from django.tasks import task

from classifier import retraining


@task()
def retrain(job_id: int) -> None:
    """Run training job `job_id`; its row, not the task's result, holds its progress and outcome."""
    retraining.training_job_run(job_id)
