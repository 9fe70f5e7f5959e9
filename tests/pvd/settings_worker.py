"""Settings of the Celery worker tests/pvd/test_worker_comes_back.py starts: the shipped
settings (broker reconnection included) on the test's own Redis, plus its test tasks."""

from pvd.settings_test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_IMPORTS = ["tests.pvd.worker_tasks"]
