from django.urls import path

from apps.sso import admin_views

urlpatterns = [
    path("", admin_views.providers, name="sso-admin-providers"),
    path("<slug:provider>/login", admin_views.start, name="sso-admin-start"),
    path("<slug:provider>/callback", admin_views.callback, name="sso-admin-callback"),
]
