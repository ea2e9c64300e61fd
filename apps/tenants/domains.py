"""A tenant's domains: its own host `<slug>.<base domain>`, and the list an operator edits
(one of them primary, each a host name no other tenant has)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core.errors import ConflictError, ValidationError
from apps.tenants.lifecycle import pending_deletion_message
from apps.tenants.models import Domain, Tenant
from apps.tenants.public_schema import tenant_audit
from apps.tenants.validators import hostname_errors


def tenant_hostname(slug: str) -> str:
    return f"{slug}.{settings.PLATFORM_BASE_DOMAIN}"


@dataclass(frozen=True)
class DomainSpec:
    domain: str
    is_primary: bool = False


def domain_list_check(
    *, tenant: Tenant, domains: Sequence[DomainSpec]
) -> tuple[dict[str, bool], list[str]]:
    """The list as {host name: is primary}, and what is wrong with it (for forms to show)."""
    existing = set(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True))
    wanted: dict[str, bool] = {}
    problems: list[str] = []
    for spec in domains:
        hostname = spec.domain.strip().lower().rstrip(".")
        if hostname in wanted:
            problems.append(f"'{hostname}' is listed twice.")
            continue
        if hostname not in existing:  # the ones it has were checked when they were added
            problems += [
                f"{hostname or '(empty)'}: {p}" for p in hostname_errors(hostname, slug=tenant.slug)
            ]
        wanted[hostname] = bool(spec.is_primary)
    own = tenant_hostname(tenant.slug)
    if own not in wanted:
        problems.append(f"{own} is the tenant's own host: it cannot be removed.")
    if sum(wanted.values()) != 1:
        problems.append("Exactly one domain must be primary.")
    return wanted, problems


def tenant_domains_set(*, tenant: Tenant, domains: Sequence[DomainSpec]) -> list[Domain]:
    """Make the tenant's domains exactly `domains`: one of them primary, its own
    `<slug>.<base domain>` among them, each a host name no other tenant has.

    The primary domain is where links mailed to its users point. Audited in the public
    schema (`tenant.domains_changed`)."""
    if tenant.is_public:
        raise ValidationError("The platform's own tenant cannot be changed here.")
    if tenant.is_deleted:
        raise ConflictError(pending_deletion_message(tenant))
    wanted, problems = domain_list_check(tenant=tenant, domains=domains)
    if problems:
        raise ValidationError(details={"domains": problems})

    try:
        with transaction.atomic():
            current = {
                d.domain: d for d in Domain.objects.select_for_update().filter(tenant=tenant)
            }
            taken = list(
                Domain.objects.filter(domain__in=[h for h in wanted if h not in current])
                .exclude(tenant=tenant)
                .values_list("domain", flat=True)
            )
            if taken:
                raise ConflictError(
                    "A domain is in use by another tenant",
                    details={
                        "domains": [f"{h} is a domain of another tenant." for h in sorted(taken)]
                    },
                )
            before = sorted((d.domain, d.is_primary) for d in current.values())
            for hostname, domain in current.items():
                if hostname not in wanted:
                    domain.delete()
            # Demote first, then promote: at no point two primaries.
            for hostname, domain in current.items():
                if hostname in wanted and domain.is_primary and not wanted[hostname]:
                    domain.is_primary = False
                    domain.save(update_fields=["is_primary"])
            for hostname, is_primary in wanted.items():
                domain = current.get(hostname)
                if domain is None:
                    Domain.objects.create(tenant=tenant, domain=hostname, is_primary=is_primary)
                elif domain.is_primary != is_primary:
                    domain.is_primary = is_primary
                    domain.save(update_fields=["is_primary"])
            after = sorted(wanted.items())
            if before != after:
                tenant_audit(
                    "tenant.domains_changed",
                    tenant.pk,
                    {
                        "domains": [
                            [f"{h}{' (primary)' if p else ''}" for h, p in before],
                            [f"{h}{' (primary)' if p else ''}" for h, p in after],
                        ]
                    },
                )
    except IntegrityError:
        # Lost a race with another tenant taking one of the names.
        raise ConflictError(
            "A domain is in use by another tenant", details={"domains": ["Try again."]}
        ) from None
    return list(Domain.objects.filter(tenant=tenant).order_by("-is_primary", "domain"))
