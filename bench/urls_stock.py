from django.urls import path

from bench import stock_views

urlpatterns = [
    path("api/v1/ping", stock_views.ping),
    path("api/v1/users/me", stock_views.MeView.as_view()),
    path("api/v1/users", stock_views.UsersView.as_view()),
    path("api/v1/auth/login", stock_views.LoginView.as_view()),
]
