"""A tenant app of the scale benchmark only: the table its additive migrations change.

`bench.settings_scale` installs it as a tenant app and points its migrations at one of
`migrations_v1` .. `migrations_v4` (SCALE_MIGRATIONS): v1 creates the table (at setup),
and each later version adds one migration that adds a nullable column and an index, the
shape of an "expand" step (docs/operations.md): v2 is applied with django-tenants'
standard executor, v3 with its multiprocessing executor, v4 with the platform's default.
"""
