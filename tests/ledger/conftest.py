from pg_server import postgres_url  # noqa: F401  (re-exported fixture; tests/ is on sys.path)
