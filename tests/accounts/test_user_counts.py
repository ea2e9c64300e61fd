"""UserCount: the trigger-kept numbers of users, exact after every kind of write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User, UserCount
from apps.accounts.selectors import user_list_total
from apps.accounts.services.users import user_create, user_delete, user_restore, users_purge
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db

PAIRS = [(deleted, active) for deleted in (False, True) for active in (False, True)]


def _kept() -> dict[tuple[bool, bool], int]:
    kept = {(c.is_deleted, c.is_active): c.count for c in UserCount.objects.all()}
    return {pair: kept.get(pair, 0) for pair in PAIRS}


def _counted() -> dict[tuple[bool, bool], int]:
    return {
        (deleted, active): User.objects.filter(is_deleted=deleted, is_active=active).count()
        for deleted, active in PAIRS
    }


def _exact() -> None:
    assert _kept() == _counted()
    for deleted in (False, True):
        assert user_list_total(deleted=deleted) == User.objects.filter(is_deleted=deleted).count()
        for active in (False, True):
            assert (
                user_list_total(deleted=deleted, is_active=active)
                == User.objects.filter(is_deleted=deleted, is_active=active).count()
            )


def test_counts_follow_every_kind_of_write(tenant_a, staff_a) -> None:
    with tenant_context(tenant_a.tenant):
        _exact()  # the tenant's users from before (migrated, then kept)
        created = user_create(email="counted@alpha.test", password="a long passphrase 1")
        _exact()
        User.objects.bulk_create(
            [User(email=f"bulk{n}@alpha.test", username=f"bulk{n}", is_active=n % 3 != 0)
             for n in range(25)]
        )  # fmt: skip
        _exact()
        User.objects.filter(username__startswith="bulk", is_active=True).update(is_active=False)
        _exact()
        User.objects.filter(username__startswith="bulk").update(full_name="Renamed")  # no change
        _exact()
        user_delete(user=created, by=staff_a)
        _exact()
        user_restore(user=User.objects.get(pk=created.pk), by=staff_a)
        _exact()
        gone = make_user(email="gone@alpha.test", username="gone")
        user_delete(user=gone, by=staff_a)
        User.objects.filter(pk=gone.pk).update(deleted_at=timezone.now() - timedelta(days=400))
        assert users_purge(older_than_days=30) >= 1  # hard deletes
        _exact()
        User.objects.filter(username__startswith="bulk").delete()
        _exact()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_user (password, is_superuser, email, username, full_name, "
                "phone_number, is_active, is_staff, created_at, updated_at, is_deleted) VALUES "
                "('!', false, 'raw@alpha.test', 'raw', '', '', true, false, now(), now(), false)"
            )
        _exact()


def test_a_truncate_empties_the_counts(tenant_b) -> None:
    with tenant_context(tenant_b.tenant):
        make_user(email="soon.gone@beta.test", username="soon-gone")
        assert sum(_kept().values()) > 0
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE accounts_user CASCADE")  # rolled back with the test
        assert _kept() == _counted() == dict.fromkeys(PAIRS, 0)


def test_a_new_tenant_counts_from_its_first_user() -> None:
    from apps.tenants.services import tenant_create

    provisioned = tenant_create(name="Counted", slug="counted", admin_email="owner@counted.test")
    with tenant_context(provisioned.tenant):
        assert _kept()[(False, True)] == 1 == User.objects.count()
        make_user(email="second@counted.test", username="second")
        _exact()


def test_operators_are_counted_in_the_public_schema(operator) -> None:
    _exact()


@pytest.fixture
def staff_token(api_a, staff_a) -> str:
    return str(api_a.login("staff@alpha.test")["access_token"])


def test_the_list_reads_its_total_from_the_counts(api_a, staff_token, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        for n in range(4):
            make_user(email=f"listed{n}@alpha.test", username=f"listed{n}", is_active=n != 0)
        live, active = (
            User.objects.live().count(),
            User.objects.live().filter(is_active=True).count(),
        )
    api_a.call("get", "/api/v1/users", token=staff_token)  # warm the tenant and auth caches
    for params, expected in (({}, live), ({"is_active": "true"}, active)):
        with CaptureQueriesContext(connection) as ctx:
            data = api_a.call("get", "/api/v1/users", params, token=staff_token).json()["data"]
        assert data["total"] == expected
        statements = [q["sql"] for q in ctx.captured_queries]
        assert len(statements) == 2 and "accounts_usercount" in statements[0]
        assert not any("COUNT(*)" in s for s in statements)
