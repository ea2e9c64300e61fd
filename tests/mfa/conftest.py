from __future__ import annotations

from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401  (fixtures)
from tests.sso.conftest import make_provider, op, sign_in  # noqa: F401  (test_sso_amr.py)
