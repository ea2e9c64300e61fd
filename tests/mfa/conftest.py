from __future__ import annotations

from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401  (fixtures)
