from confusable_homoglyphs import categories, confusables
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AdminPasswordChangeForm, AuthenticationForm, UserCreationForm
from django.db.models import Q

from accounts import services, sign_in_limits
from accounts.models import User


class SignUpForm(UserCreationForm):
    """Django's sign-up form, refusing a username that could pass for another person's."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)

    def clean_username(self) -> str:
        # The field has already applied NFKC (Django's UsernameField), so "ａｄａ" arrives here as "ada".
        username = self.cleaned_data.get("username")
        if not username:
            return username
        if confusables.is_dangerous(username):
            raise forms.ValidationError(
                "This username mixes alphabets so that it can pass for another name: use the letters of one.",
                code="mixed_script",
            )
        # Case apart (iexact: every letter on PostgreSQL, ASCII letters on SQLite), and as Latin letters.
        if User.objects.filter(Q(username__iexact=username) | Q(username__iexact=_as_latin(username))).exists():
            raise forms.ValidationError(
                "A user with a username that looks the same already exists: choose another.", code="lookalike"
            )
        return username


def _as_latin(username: str) -> str:
    """The username with each letter of another alphabet that has a Latin lookalike written as that lookalike:
    Cyrillic "асе" reads "ace". Names of one other alphabet are welcome; this only finds the ones that pass
    for a Latin name."""
    lookalikes = {}
    for found in confusables.is_confusable(username, preferred_aliases=["latin"], greedy=True) or []:
        latin = [glyph["c"] for glyph in found["homoglyphs"] if all(categories.alias(c) == "LATIN" for c in glyph["c"])]
        if latin:
            lookalikes[found["character"]] = latin[0]
    return "".join(lookalikes.get(character, character) for character in username)


class PauseMessage:
    """For a sign-in form: while axes pauses signing in, say so instead of "wrong password"."""

    def get_invalid_login_error(self) -> forms.ValidationError:
        if sign_in_limits.is_paused(self.request):
            return forms.ValidationError(sign_in_limits.paused_message(), code="paused")
        return super().get_invalid_login_error()


class SignInForm(PauseMessage, AuthenticationForm):
    pass


class StaffSignInForm(PauseMessage, AdminAuthenticationForm):
    pass


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "set a password" form: the account's API tokens stop working with the old password."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        services.api_tokens_revoke(user=user)
        return user
