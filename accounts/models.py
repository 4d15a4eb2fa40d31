from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """Django's user, as the project's own model so fields can be added later without a painful migration."""
