"""/api/v1/users: profile, management by staff, search, soft delete and restore, events."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.jobs.models import OutboxEvent
from tests.accounts.factories import PASSWORD, make_user

USERS = "/api/v1/users"
NEW_USER = {
    "email": "New.Person@Alpha.test",
    "username": "newperson",
    "password": "a-good-long-passphrase",
    "password_confirm": "a-good-long-passphrase",
    "full_name": "New Person",
}


@pytest.fixture
def staff_token(api_a, staff_a) -> str:
    return str(api_a.login("staff@alpha.test")["access_token"])


@pytest.fixture
def member_token(api_a, member_a) -> str:
    return str(api_a.login("member@alpha.test")["access_token"])


def events(tenant_fixture, event_type: str) -> list[dict]:
    with tenant_context(tenant_fixture.tenant):
        return [e.data for e in OutboxEvent.objects.filter(event_type=event_type).order_by("id")]


# ------------------------------------------------------------------ me


@pytest.mark.django_db
def test_me_shows_and_edits_the_profile_only(api_a, member_a, member_token, tenant_a) -> None:
    me = api_a.call("get", f"{USERS}/me", token=member_token).json()["data"]
    assert me["email"] == "member@alpha.test" and me["id"] == member_a.pk
    assert "password" not in me and not any("hash" in key for key in me)

    updated = api_a.call(
        "patch", f"{USERS}/me", {"full_name": "Mem Ber", "username": "mem"}, token=member_token
    )
    assert updated.status_code == 200
    assert (
        updated.json()["data"]["full_name"] == "Mem Ber"
        and updated.json()["data"]["username"] == "mem"
    )
    assert events(tenant_a, "user.updated") == [
        {"user_id": member_a.pk, "updated_fields": ["full_name", "username"]}
    ]

    for field, value in (("email", "new@alpha.test"), ("is_staff", True), ("is_active", False)):
        refused = api_a.call("patch", f"{USERS}/me", {field: value}, token=member_token)
        assert refused.status_code == 422 and field in refused.json()["error"]["details"]
    with tenant_context(tenant_a.tenant):
        assert not User.objects.get(pk=member_a.pk).is_staff


# ------------------------------------------------------------------ who may do what


@pytest.mark.django_db
def test_members_without_roles_reach_only_their_own_profile(
    api_a, member_a, member_token, staff_a
) -> None:
    """Without users.view / users.manage every /users route is a 403, their own id included:
    a member's own profile lives at /users/me."""
    for method, path, body in (
        ("get", USERS, None),
        ("post", USERS, NEW_USER),
        ("get", f"{USERS}/{staff_a.pk}", None),
        ("patch", f"{USERS}/{staff_a.pk}", {"full_name": "x"}),
        ("delete", f"{USERS}/{staff_a.pk}", None),
        ("get", f"{USERS}/{member_a.pk}", None),
        ("patch", f"{USERS}/{member_a.pk}", {"is_staff": True}),
        ("post", f"{USERS}/{staff_a.pk}/restore", None),
    ):
        response = api_a.call(method, path, body, token=member_token)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert api_a.call("get", f"{USERS}/me", token=member_token).status_code == 200
    own = api_a.call("patch", f"{USERS}/me", {"full_name": "Me Myself"}, token=member_token)
    assert own.status_code == 200


@pytest.mark.django_db
def test_staff_create_users_with_normalised_unique_emails(api_a, staff_token, tenant_a) -> None:
    created = api_a.call("post", USERS, NEW_USER, token=staff_token)
    assert created.status_code == 201, created.content
    body = created.json()["data"]
    assert body["email"] == "new.person@alpha.test"
    assert "password" not in body and "password_confirm" not in body
    assert events(tenant_a, "user.created")[-1] == {
        "user_id": body["id"],
        "email": "new.person@alpha.test",
    }
    api_a.login("new.person@alpha.test", "a-good-long-passphrase")

    dup_email = api_a.call("post", USERS, {**NEW_USER, "username": "other"}, token=staff_token)
    assert dup_email.status_code == 409
    assert dup_email.json()["error"]["message"] == "Email already registered"
    dup_name = api_a.call(
        "post",
        USERS,
        {**NEW_USER, "email": "x@alpha.test", "username": "NEWPERSON"},
        token=staff_token,
    )
    assert dup_name.status_code == 409
    assert dup_name.json()["error"]["message"] == "Username already taken"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"password_confirm": "something-else-entirely"}, "password_confirm"),
        ({"password": "short", "password_confirm": "short"}, "password"),
        ({"password": "password123", "password_confirm": "password123"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"username": "has spaces!"}, "username"),
        ({"is_superuser": True}, "is_superuser"),
    ],
)
def test_create_validates(api_a, staff_token, tenant_a, changes, field) -> None:
    response = api_a.call("post", USERS, {**NEW_USER, **changes}, token=staff_token)
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(username="newperson").exists()


@pytest.mark.django_db
def test_staff_edit_any_field_and_conflicts_are_409(api_a, staff_token, member_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        make_user(email="taken@alpha.test", username="taken")
    url = f"{USERS}/{member_a.pk}"
    ok = api_a.call(
        "patch", url, {"email": "Renamed@Alpha.test", "is_staff": True}, token=staff_token
    )
    assert ok.status_code == 200, ok.content
    # The staff flag changes at once; the address waits for its confirmation.
    data = ok.json()["data"]
    assert (data["is_staff"], data["email"]) == (True, "member@alpha.test")
    assert data["pending_email"] == "renamed@alpha.test"
    assert (
        api_a.call("patch", url, {"email": "taken@alpha.test"}, token=staff_token).status_code
        == 409
    )
    assert api_a.call("patch", url, {"username": "TAKEN"}, token=staff_token).status_code == 409
    assert api_a.call("patch", url, {"email": "bad"}, token=staff_token).status_code == 422


# ------------------------------------------------------------------ soft delete and restore


@pytest.mark.django_db
def test_delete_is_soft_and_restore_brings_the_user_back(
    api_a, staff_token, member_a, tenant_a
) -> None:
    member_tokens = api_a.login("member@alpha.test")
    url = f"{USERS}/{member_a.pk}"
    assert api_a.call("delete", url, token=staff_token).status_code == 204
    with tenant_context(tenant_a.tenant):
        row = User.objects.get(pk=member_a.pk)
        assert row.is_deleted and row.deleted_at is not None
    assert api_a.call("get", url, token=staff_token).status_code == 404
    assert (
        api_a.call("get", "/api/v1/users/me", token=member_tokens["access_token"]).status_code
        == 401
    )
    assert (
        api_a.call(
            "post", "/api/v1/auth/login", {"email": "member@alpha.test", "password": PASSWORD}
        ).status_code
        == 401
    )
    listed = api_a.call("get", USERS, {"deleted": "true"}, token=staff_token).json()["data"][
        "items"
    ]
    assert [u["id"] for u in listed] == [member_a.pk]

    restored = api_a.call("post", f"{url}/restore", token=staff_token)
    assert restored.status_code == 200 and restored.json()["data"]["is_deleted"] is False
    api_a.login("member@alpha.test")
    assert events(tenant_a, "user.deleted") == [{"user_id": member_a.pk}]
    assert events(tenant_a, "user.restored") == [{"user_id": member_a.pk}]


@pytest.mark.django_db
def test_a_deleted_users_email_can_register_again_and_then_blocks_restore(
    api_a, staff_token, member_a
) -> None:
    assert api_a.call("delete", f"{USERS}/{member_a.pk}", token=staff_token).status_code == 204
    again = api_a.call(
        "post",
        USERS,
        {**NEW_USER, "email": "member@alpha.test", "username": "member"},
        token=staff_token,
    )
    assert again.status_code == 201
    conflict = api_a.call("post", f"{USERS}/{member_a.pk}/restore", token=staff_token)
    assert conflict.status_code == 409


@pytest.mark.django_db
def test_staff_cannot_delete_themselves(api_a, staff_a, staff_token) -> None:
    assert api_a.call("delete", f"{USERS}/{staff_a.pk}", token=staff_token).status_code == 422


# ------------------------------------------------------------------ listing, search, filters


@pytest.fixture
def directory(tenant_a) -> dict[str, User]:
    with tenant_context(tenant_a.tenant):
        return {
            "annabel": make_user(
                email="annabel.leeds@alpha.test", username="aleeds", full_name="Annabel Leeds"
            ),
            "ann": make_user(email="ann@alpha.test", username="ann", full_name="Ann Other"),
            "bob": make_user(email="bob@alpha.test", username="bobby", full_name="Robert Annan"),
            "idle": make_user(
                email="idle@alpha.test", username="idle", full_name="Idle Hands", is_active=False
            ),
        }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [u["id"] for u in response.json()["data"]["items"]]


@pytest.mark.django_db
def test_search_matches_prefixes_and_ranks_usernames_first(api_a, staff_token, directory) -> None:
    found = ids(api_a.call("get", USERS, {"search": "ann"}, token=staff_token))
    # "ann" is ann's username (weight A) and a prefix of the others' names (B).
    assert found[0] == directory["ann"].pk
    assert set(found) == {directory["ann"].pk, directory["annabel"].pk, directory["bob"].pk}
    assert ids(api_a.call("get", USERS, {"search": "annab lee"}, token=staff_token)) == [
        directory["annabel"].pk
    ]
    assert ids(
        api_a.call("get", USERS, {"search": "annabel.leeds@alpha.test"}, token=staff_token)
    ) == [directory["annabel"].pk]
    assert ids(api_a.call("get", USERS, {"search": "zzz"}, token=staff_token)) == []
    assert ids(api_a.call("get", USERS, {"search": "&|!:*()'"}, token=staff_token)) == []


@pytest.mark.django_db
def test_search_condition_is_served_by_the_gin_index(directory, tenant_a) -> None:
    from apps.accounts.selectors import search_query

    # Unordered: ordered by id, a plan may walk the primary key instead on a small table.
    query = User.objects.filter(search_vector=search_query("ann")).order_by().query
    with tenant_context(tenant_a.tenant), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_user_search_gin" in plan, plan


@pytest.mark.django_db
def test_filters_ordering_and_bad_values(api_a, staff_token, directory, staff_a) -> None:
    inactive = ids(api_a.call("get", USERS, {"is_active": "false"}, token=staff_token))
    assert inactive == [directory["idle"].pk]
    by_name = api_a.call("get", USERS, {"ordering": "-username"}, token=staff_token).json()["data"][
        "items"
    ]
    assert [u["username"] for u in by_name] == sorted(
        (u["username"] for u in by_name), reverse=True
    )
    assert api_a.call("get", USERS, {"ordering": "password"}, token=staff_token).status_code == 422
    assert api_a.call("get", USERS, {"is_active": "perhaps"}, token=staff_token).status_code == 422
    assert api_a.call("get", USERS, {"page_size": "0"}, token=staff_token).status_code == 422
    assert api_a.call("get", USERS, {"sort": "x"}, token=staff_token).status_code == 422


@pytest.mark.django_db
def test_list_costs_the_same_queries_at_page_size_1_and_100(api_a, staff_token, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        for n in range(30):
            make_user(email=f"bulk{n}@alpha.test", username=f"bulk{n}")
    api_a.call("get", USERS, token=staff_token)  # warm the tenant and auth caches
    counts = []
    for size in (1, 100):
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.call("get", USERS, {"page_size": size}, token=staff_token)
        assert response.status_code == 200
        assert len(response.json()["data"]["items"]) == min(size, response.json()["data"]["total"])
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] == 2  # COUNT and one SELECT; authentication costs none


@pytest.mark.django_db
def test_a_search_reads_its_total_with_its_page(api_a, staff_token, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        for n in range(7):
            make_user(email=f"paged{n}@alpha.test", username=f"paged{n}", full_name="Paged Person")
        make_user(email="other@alpha.test", username="other", full_name="Someone Else")
    api_a.call("get", USERS, token=staff_token)  # warm the tenant and auth caches
    seen: list[int] = []
    for page in (1, 2, 3):
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.call(
                "get", USERS, {"search": "paged", "page_size": 3, "page": page}, token=staff_token
            )
        data = response.json()["data"]
        assert (data["total"], data["total_pages"], data["page"]) == (7, 3, page)
        seen += [u["id"] for u in data["items"]]
        statements = [q["sql"] for q in ctx.captured_queries]
        assert len(statements) == 1 and "COUNT(" in statements[0] and "OVER ()" in statements[0]
        # Only the columns the output shows: never the password hash or the search vector.
        columns = statements[0].partition(" FROM ")[0].partition(", ts_rank(")[0]
        assert '"email"' in columns and '"password"' not in columns
        assert '"search_vector"' not in columns
    assert len(seen) == len(set(seen)) == 7  # every match once, in rank order across pages
    # Past the end and no match at all: an empty page, still with the real total.
    past = api_a.call("get", USERS, {"search": "paged", "page": 9}, token=staff_token)
    assert past.json()["data"]["items"] == [] and past.json()["data"]["total"] == 7
    none = api_a.call("get", USERS, {"search": "zzzz"}, token=staff_token).json()["data"]
    assert (none["items"], none["total"], none["total_pages"]) == ([], 0, 0)


@pytest.mark.django_db
def test_other_tenants_users_are_invisible(api_a, api_b, tenant_b, staff_token) -> None:
    with tenant_context(tenant_b.tenant):
        stranger = make_user(email="stranger@beta.test")
    listed = api_a.call("get", USERS, {"page_size": 100}, token=staff_token).json()["data"]["items"]
    assert "stranger@beta.test" not in {u["email"] for u in listed}
    # Ids are per schema: the same number on A is A's user (or nobody), never B's.
    response = api_a.call("get", f"{USERS}/{stranger.pk}", token=staff_token)
    assert response.status_code in (200, 404)
    assert "stranger@beta.test" not in response.content.decode()
