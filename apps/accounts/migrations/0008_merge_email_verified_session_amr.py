from django.db import migrations
from django.db.migrations.operations.base import Operation


class Migration(migrations.Migration):
    """Joins two migrations made side by side: the users' verified address (self sign-up)
    and the sessions' authentication methods (multi-factor sign-in)."""

    dependencies = [
        ("accounts", "0007_session_amr_session_auth_time"),
        ("accounts", "0007_user_email_verified"),
    ]
    operations: list[Operation] = []
