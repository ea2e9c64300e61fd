"""Cache bookkeeping on every change to a user, however it is made (service, admin, shell)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.accounts.authentication import user_state_forget
from apps.accounts.models import User


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def user_changed(sender: type[User], instance: User, **kwargs: Any) -> None:
    # Now, so this process never serves the old state again; after commit, so a
    # request that cached the pre-commit row meanwhile is corrected.
    if kwargs.get("created"):
        return  # a new id: nothing can be cached for it (ids are never reused)
    user_id = instance.pk
    if kwargs.get("update_fields") != frozenset({"last_login"}):
        # Sign-in's own save skips this: a moment of the old last_login is harmless.
        user_state_forget(user_id)
    transaction.on_commit(lambda: user_state_forget(user_id))
