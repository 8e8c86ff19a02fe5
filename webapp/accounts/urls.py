"""Sign-in, sign-out and profile URLs."""

from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/token/", views.token_rotate, name="token-rotate"),
    path("profile/token/revoke/", views.token_revoke, name="token-revoke"),
]
