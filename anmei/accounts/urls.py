from django.urls import path

from anmei.accounts import api

urlpatterns = [
    path("register", api.RegisterApi.as_view(), name="auth-register"),
    path("guest", api.GuestApi.as_view(), name="auth-guest"),
    path("credentials", api.GuestCredentialsApi.as_view(), name="auth-credentials"),
    path("login", api.LoginApi.as_view(), name="auth-login"),
    path("ws-ticket", api.WsTicketApi.as_view(), name="auth-ws-ticket"),
    path("logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("password", api.PasswordChangeApi.as_view(), name="auth-password"),
]
