"""Users counted per (is_deleted, is_active) by triggers, so the users list needs no COUNT(*).

The trigger function lives in the public schema (created when public migrates,
which is normally first, or by the first schema that finds it missing) and writes to the counts table of the schema whose user
table fired it (TG_TABLE_SCHEMA), whatever the search path. Inserts and
deletes are counted once per statement (transition tables: a bulk insert is one
upsert per pair), changes of the two columns once per changed row, and a
TRUNCATE empties the counts. Each schema gets its triggers and its counts from
its own rows; new tenants get the triggers with the template's copy
(apps/tenants/schema_copy.py replays them).
"""

from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION public.accounts_user_count_apply() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    counts text := format('%I.accounts_usercount', TG_TABLE_SCHEMA);
    upsert text := ' ON CONFLICT (is_deleted, is_active) DO UPDATE SET count = c.count + EXCLUDED.count';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('DELETE FROM %s', counts);
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO %s AS c (is_deleted, is_active, count) '
                       'SELECT is_deleted, is_active, count(*) FROM new_rows GROUP BY 1, 2', counts)
                || upsert;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO %s AS c (is_deleted, is_active, count) '
                       'SELECT is_deleted, is_active, -count(*) FROM old_rows GROUP BY 1, 2', counts)
                || upsert;
    ELSE  -- UPDATE, per row, only when is_deleted or is_active changed (the trigger's WHEN)
        EXECUTE format('INSERT INTO %s AS c (is_deleted, is_active, count) '
                       'VALUES ($1, $2, -1), ($3, $4, 1)', counts) || upsert
            USING OLD.is_deleted, OLD.is_active, NEW.is_deleted, NEW.is_active;
    END IF;
    RETURN NULL;
END
$fn$
"""

TRIGGERS = """
CREATE TRIGGER accounts_user_count_insert AFTER INSERT ON accounts_user
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION public.accounts_user_count_apply();
CREATE TRIGGER accounts_user_count_delete AFTER DELETE ON accounts_user
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION public.accounts_user_count_apply();
CREATE TRIGGER accounts_user_count_update AFTER UPDATE OF is_deleted, is_active ON accounts_user
    FOR EACH ROW WHEN (OLD.is_deleted IS DISTINCT FROM NEW.is_deleted
                       OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION public.accounts_user_count_apply();
CREATE TRIGGER accounts_user_count_truncate AFTER TRUNCATE ON accounts_user
    FOR EACH STATEMENT EXECUTE FUNCTION public.accounts_user_count_apply();
DELETE FROM accounts_usercount;
INSERT INTO accounts_usercount (is_deleted, is_active, count)
    SELECT is_deleted, is_active, count(*) FROM accounts_user GROUP BY 1, 2;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS accounts_user_count_insert ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_count_delete ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_count_update ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_count_truncate ON accounts_user;
"""


def counting_start(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django_tenants.utils import get_public_schema_name

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        # Public (migrated first) writes the function; a schema migrated on its own before
        # public creates it if missing. Tenants never replace it, so a parallel migration of
        # tenants does not race on it.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'accounts_user_count_apply' "
            "AND pronamespace = 'public'::regnamespace)"
        )
        exists = cursor.fetchone()[0]
        if getattr(connection, "schema_name", None) == get_public_schema_name() or not exists:
            cursor.execute(FUNCTION)
        cursor.execute(TRIGGERS)


def counting_stop(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP_TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_phone_number"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("is_deleted", models.BooleanField()),
                ("is_active", models.BooleanField()),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("is_deleted", "is_active"), name="accounts_usercount_key"
                    )
                ],
            },
        ),
        migrations.RunPython(counting_start, counting_stop),
    ]
