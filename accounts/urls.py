from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.forms import SignInForm

urlpatterns = [
    path("", views.account, name="account"),
    path("tokens/", views.api_token_create, name="api_token_create"),
    path("tokens/<str:digest>/renew/", views.api_token_renew, name="api_token_renew"),
    path("tokens/<str:digest>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("signup/", views.sign_up, name="sign_up"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="accounts/sign_in.html", form_class=SignInForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password_change_done",
    ),
]
