"""Every write to an account's API tokens (django-rest-knox keeps each as a SHA-512 hash, never the token).

A token is returned in full once, by the function that makes it; afterwards only its first characters
(knox's token_key, used to find it) and its hash are known.
"""

from django.db import transaction
from knox.models import AuthToken

from accounts.models import User

# Each POST /api/v1/auth/token/ (each client, each script run) makes a token of its own; past this many
# per account the oldest are revoked, so forgotten ones do not pile up.
API_TOKENS_PER_USER = 10


def api_token_create(*, user: User) -> str:
    """A new API token for the user, in full: the only time it is known."""
    with transaction.atomic():
        _, key = AuthToken.objects.create(user=user, expiry=None)
        newest = user.auth_token_set.order_by("-created").values_list("digest", flat=True)[:API_TOKENS_PER_USER]
        user.auth_token_set.exclude(digest__in=list(newest)).delete()
    return key


def api_token_renew(*, token: AuthToken) -> str:
    """Revoke the token and make its owner a new one, returned in full."""
    with transaction.atomic():
        token.delete()
        return api_token_create(user=token.user)


def api_token_revoke(*, token: AuthToken) -> None:
    token.delete()


def api_tokens_revoke(*, user: User) -> int:
    """Revoke every API token of the user; how many there were."""
    count, _ = user.auth_token_set.all().delete()
    return count


def api_tokens_renew(*, user: User) -> str | None:
    """After a password change: every token revoked, and one new token in their place if there were any."""
    with transaction.atomic():
        return api_token_create(user=user) if api_tokens_revoke(user=user) else None
