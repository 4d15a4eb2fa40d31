"""`python manage.py register_models`: know every model folder in EMOTIONSITE_MODEL_DIR, and check the active one.

Run on every start (the README's run command, the container's entrypoint): a missing or corrupt active
folder is found here, recorded as the version's problem, and the last good version takes over.
"""

from django.core.management.base import BaseCommand, CommandError

from classifier import selectors, services


class Command(BaseCommand):
    help = (
        "Register the model version folders found in EMOTIONSITE_MODEL_DIR and, if no version is active, "
        "activate the newest; then load the active version, falling back to the last good one if it cannot be "
        "loaded. Safe to run on every start. With --activate VERSION, make that version active."
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
            try:
                services.model_version_activate(model_version=model_version)
            except services.AlreadyActive as error:
                self.stdout.write(str(error))  # what was asked for is so
            except services.ModelUnavailable as error:
                raise CommandError(str(error)) from None
        try:
            active, _ = services.active_predictor()
        except services.ModelUnavailable as error:
            # Not an error: the site still starts, and /healthz and uploads say that no model is available.
            self.stderr.write(f"No model version can predict: {error}")
            return
        finally:
            for broken in selectors.model_versions_with_problems():
                self.stderr.write(f"Model version {broken.version} cannot be used: {broken.problem}")
        self.stdout.write(f"Active model version: {active.version}")
