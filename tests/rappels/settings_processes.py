"""Settings of the sweeps and Celery workers the tests start as OS processes
(tests/rappels/test_processes.py): the test settings, a real broker, and e-mails appended to
a file all the processes share."""

from pvd.settings_test import *  # noqa: F403

EMAIL_BACKEND = "tests.rappels.sweep_process.AppendBackend"
CELERY_TASK_ALWAYS_EAGER = False
