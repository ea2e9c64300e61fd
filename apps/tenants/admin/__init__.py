"""Tenants and their domains in the public admin (platform operators): registered here,
the tenants' pages in `tenants.py`, the domains' in `domains.py`, the forms in `forms.py`.

Every write goes through the services (`apps.tenants.services`, `.lifecycle`,
`.domains`): creating (schema cloned from the template, first admin), changing,
deactivating, deleting (deactivated now, dropped after TENANT_RETENTION_DAYS, or now
when confirmed), restoring and editing the domains, so audit, events and cache
invalidation follow as they do for the API. A service's refusal is a form error or a
message on the page, never an error page.
"""

from django.contrib import admin

from apps.tenants.admin.domains import DomainAdmin
from apps.tenants.admin.tenants import TenantAdmin
from apps.tenants.models import Domain, Tenant

admin.site.register(Tenant, TenantAdmin)
admin.site.register(Domain, DomainAdmin)
