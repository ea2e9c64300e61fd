"""?search= on /api/v1/users: an exact username or e-mail always finds its user, first, whatever
its characters; words still match as prefixes; one statement whatever the search."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from tests.accounts.factories import make_user

USERS = "/api/v1/users"


@pytest.fixture
def staff_token(api_a, staff_a) -> str:
    return str(api_a.login("staff@alpha.test")["access_token"])


# username, e-mail, full name
PEOPLE = [
    ("xyz-19851231", "xyz.birthday@alpha.test", "Xavier Zed"),
    ("sdr-2e3e9b66", "sdr@alpha.test", "Generated Account"),
    ("john.smith", "jsmith@alpha.test", "John Smith"),
    ("a+b", "a+b@x.test", "Plus Sign"),
    ("ops-2024", "ops-2024@alpha.test", "Ops Team"),
    ("x.y-12", "x.y-12@alpha.test", "Dotted Hyphen"),
    ("иван-петров", "ivan@alpha.test", "Иван Петров"),
    ("山田太郎", "yamada@alpha.test", "山田 太郎"),
    ("o'neil", "oneil@alpha.test", "Shaun O'Neil"),
    ("+++", "plus@alpha.test", "Only Signs"),
]


@pytest.fixture
def people(tenant_a) -> dict[str, User]:
    with tenant_context(tenant_a.tenant):
        users = {
            username: make_user(username=username, email=email, full_name=full_name)
            for username, email, full_name in PEOPLE
        }
        # Near misses, which must rank below the exact match.
        users["xyz-1985"] = make_user(
            username="xyz-1985", email="xyz-19851231.fan@alpha.test", full_name="Xyz 19851231"
        )
        users["annabel"] = make_user(
            username="aleeds", email="annabel.leeds@alpha.test", full_name="Annabel Leeds"
        )
        users["ann"] = make_user(username="ann", email="ann@alpha.test", full_name="Ann Other")
        return users


def _search(api_a, token: str, text: str) -> list[int]:
    response = api_a.call("get", USERS, {"search": text}, token=token)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["data"]["items"]]


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "email", "full_name"), PEOPLE)
def test_an_exact_username_or_email_finds_its_user_first(
    api_a, staff_token, people, username: str, email: str, full_name: str
) -> None:
    user = people[username]
    for text in (username, username.upper(), email, email.upper(), f"  {email} "):
        found = _search(api_a, staff_token, text)
        assert found and found[0] == user.pk, (text, found)


@pytest.mark.django_db
def test_tokens_kept_by_the_index_are_found_as_typed(api_a, staff_token, people) -> None:
    # The index keeps '-19851231' (a signed number) and 'sdr-2e3e9b66' (a hyphenated word).
    assert people["xyz-19851231"].pk in _search(api_a, staff_token, "xyz -19851231")
    assert people["sdr-2e3e9b66"].pk in _search(api_a, staff_token, "sdr-2e3e9b66 account")
    assert people["иван-петров"].pk in _search(api_a, staff_token, "Петров")
    assert people["山田太郎"].pk in _search(api_a, staff_token, "山田")


@pytest.mark.django_db
def test_words_still_match_as_prefixes_ranked_by_weight(api_a, staff_token, people) -> None:
    assert _search(api_a, staff_token, "ann lee") == [people["annabel"].pk]
    found = _search(api_a, staff_token, "ann")
    assert found[0] == people["ann"].pk  # the exact username
    assert set(found) == {people["ann"].pk, people["annabel"].pk}
    assert _search(api_a, staff_token, "zzz") == []
    assert _search(api_a, staff_token, "&|!:*()'") == []


@pytest.mark.django_db
def test_a_search_is_one_statement_however_many_match(api_a, staff_token, people) -> None:
    api_a.call("get", USERS, token=staff_token)  # warm the tenant and auth caches
    for text in ("xyz-19851231", "+++", "ann", "alpha"):  # one match to all of them
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.call("get", USERS, {"search": text}, token=staff_token)
        assert response.status_code == 200 and response.json()["data"]["total"] >= 1
        assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.django_db
def test_the_exact_match_is_an_index_lookup(people, tenant_a) -> None:
    # The unique indexes' own expressions (lower(...)), not Django's iexact (UPPER(...)).
    from apps.accounts.selectors import exact_match

    with tenant_context(tenant_a.tenant), connection.cursor() as cursor:
        User.objects.bulk_create(
            User(email=f"filler{n}@alpha.test", username=f"filler-{n}") for n in range(300)
        )
        cursor.execute("ANALYZE accounts_user")
        cursor.execute("SET LOCAL enable_seqscan = off")
        query = User.objects.filter(exact_match("Xyz-19851231"), is_deleted=False).query
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Cond: (lower((username)::text) = 'xyz-19851231'::text)" in plan, plan
    assert "Index Cond: (lower((email)::text) = 'xyz-19851231'::text)" in plan, plan
