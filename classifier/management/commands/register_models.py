"""`python manage.py register_models`: know every model folder in EMOTIONSITE_MODEL_DIR; activate one if none is."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier import selectors, services


class Command(BaseCommand):
    help = (
        "Register the model version folders found in EMOTIONSITE_MODEL_DIR and, if no version is active, "
        "activate the newest. Safe to run on every start. With --activate VERSION, make that version active."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--activate", metavar="VERSION", help="make this registered version the active one")

    def handle(self, *args, activate: str | None = None, **options) -> None:
        registered = services.model_versions_register()
        for model_version in registered:
            self.stdout.write(f"Registered model version {model_version.version} ({model_version.path})")
        if activate:
            model_version = selectors.model_version_list().filter(version=activate).first()
            if model_version is None:
                raise CommandError(f"No model version {activate!r} is registered.")
            services.model_version_activate(model_version=model_version)
        active = selectors.active_model_version()
        if active is None:
            # Not an error: the site still starts, and /healthz and uploads say that no model is available.
            self.stderr.write(f"No model version is active: none found in {settings.EMOTIONSITE_MODEL_DIR}.")
            return
        self.stdout.write(f"Active model version: {active.version}")
