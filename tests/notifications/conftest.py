"""Fixtures shared by the notifications tests (add yours; keep the others)."""

from __future__ import annotations

from tests.accounts.conftest import Api, api_a, api_b, eager_tasks, member_a, staff_a  # noqa: F401
from tests.rbac.conftest import grant, owner_token, person  # noqa: F401
