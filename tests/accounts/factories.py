from __future__ import annotations

from typing import Any, cast

import factory

from apps.accounts.models import User

PASSWORD = "a-long-enough-password-42"


def _set_password(user: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
    user.set_password(extracted or PASSWORD)
    if create:
        user.save(update_fields=["password"])


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A user in the current schema (use inside `tenant_context`)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.Sequence(lambda n: f"user{n}")
    # Not a random name: a search test must not find a made-up "Anna" it did not ask for.
    full_name = factory.Sequence(lambda n: f"Person {n}")
    is_active = True
    password = factory.PostGeneration(_set_password)


def make_user(**fields: Any) -> User:
    """UserFactory(...), typed as the User it returns."""
    return cast(User, UserFactory(**fields))
