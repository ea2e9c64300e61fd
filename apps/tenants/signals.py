"""Cache invalidation on every tenant or domain change, however it is made (service, admin, shell).

Only cache bookkeeping lives here; the domain logic is in services.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from apps.tenants.models import Domain, Tenant
from apps.tenants.resolution import tenant_cache_invalidate


def _invalidate_now_and_after_commit(**keys: list[str]) -> None:
    # Now, so this process stops serving the old state at once; after commit,
    # so a request that re-cached the pre-commit row meanwhile is corrected.
    tenant_cache_invalidate(**keys)
    transaction.on_commit(lambda: tenant_cache_invalidate(**keys))


@receiver(post_save, sender=Tenant)
@receiver(post_delete, sender=Tenant)
def tenant_changed(sender: type[Tenant], instance: Tenant, **kwargs: Any) -> None:
    hostnames = list(Domain.objects.filter(tenant_id=instance.pk).values_list("domain", flat=True))
    _invalidate_now_and_after_commit(
        hostnames=hostnames, slugs=[instance.slug], schemas=[instance.schema_name]
    )


@receiver(post_init, sender=Domain)
def domain_loaded(sender: type[Domain], instance: Domain, **kwargs: Any) -> None:
    instance._loaded_domain = instance.domain


@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def domain_changed(sender: type[Domain], instance: Domain, **kwargs: Any) -> None:
    hostnames = {instance.domain, getattr(instance, "_loaded_domain", instance.domain)}
    _invalidate_now_and_after_commit(hostnames=sorted(h for h in hostnames if h))
