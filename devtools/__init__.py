"""Development tools: run from the checkout by run.py, bench/ and the tests; not installed
with the platform (pyproject.toml packages only apps and platform_site)."""
