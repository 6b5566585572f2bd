"""A real Redis for the shared-pacing tests."""

from redis_server import redis_url  # noqa: F401  (re-exported fixture; tests/ is on sys.path)
