from django.urls import path

from apps.organizations import apis

urlpatterns = [
    path("organizations", apis.OrganizationsApi.as_view(), name="organizations"),
    path(
        "organizations/<int:organization_id>",
        apis.OrganizationDetailApi.as_view(),
        name="organization",
    ),
    path(
        "organizations/<int:organization_id>/move",
        apis.OrganizationMoveApi.as_view(),
        name="organization-move",
    ),
    path(
        "organizations/<int:organization_id>/descendants",
        apis.OrganizationDescendantsApi.as_view(),
        name="organization-descendants",
    ),
    path(
        "organizations/<int:organization_id>/ancestors",
        apis.OrganizationAncestorsApi.as_view(),
        name="organization-ancestors",
    ),
    path(
        "organizations/<int:organization_id>/members",
        apis.MembersApi.as_view(),
        name="organization-members",
    ),
    path(
        "organizations/<int:organization_id>/members/<int:user_id>",
        apis.MemberDetailApi.as_view(),
        name="organization-member",
    ),
]
