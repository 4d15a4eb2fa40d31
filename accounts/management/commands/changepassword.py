"""`python manage.py changepassword USER`: Django's, which also revokes the user's API tokens, as a password
change anywhere else does (the password page renews them, the admin revokes them).

It takes the name because `accounts` comes before `django.contrib.auth` in INSTALLED_APPS.
"""

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword

from accounts import services


class Command(changepassword.Command):
    help = f"{changepassword.Command.help} Revokes the user's API tokens."

    def handle(self, *args, **options) -> str:
        done = super().handle(*args, **options)  # raises CommandError when the password was not changed
        # Found as Django's command finds the user.
        username = options["username"] or getpass.getuser()
        user = get_user_model()._default_manager.db_manager(options["database"]).get_by_natural_key(username)
        revoked = services.api_tokens_revoke(user=user)
        return f"{done}; {revoked} API token{'s' if revoked != 1 else ''} revoked"
