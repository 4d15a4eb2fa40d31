from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import services
from accounts.forms import SignUpForm


@sensitive_post_parameters("password1", "password2")
def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:capture_new")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("classifier:capture_new")
    return render(request, "accounts/sign_up.html", {"form": form})


def _account_page(request: HttpRequest, *, new_token: str | None = None) -> HttpResponse:
    tokens = request.user.auth_token_set.order_by("-created")
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": new_token})


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


# A page that shows a new token is the token's only copy: never cached, never redirected to.
@never_cache
@login_required
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    return _account_page(request, new_token=services.api_token_create(user=request.user))


@never_cache
@login_required
@require_POST
def api_token_renew(request: HttpRequest, digest: str) -> HttpResponse:
    token = get_object_or_404(request.user.auth_token_set, digest=digest)
    return _account_page(request, new_token=services.api_token_renew(token=token))


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, digest: str) -> HttpResponse:
    token = get_object_or_404(request.user.auth_token_set, digest=digest)
    services.api_token_revoke(token=token)
    messages.success(request, f"The token starting {token.token_key[:8]} is revoked.")
    return redirect("account")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; the account's API tokens are renewed with it, the new one shown once."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        new_token = services.api_tokens_renew(user=form.user)
        if new_token is None:
            return response
        done = render(self.request, "accounts/password_change_done.html", {"new_token": new_token})
        add_never_cache_headers(done)
        return done
