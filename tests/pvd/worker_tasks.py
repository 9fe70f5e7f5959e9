"""Tasks for the worker started by tests/pvd/test_worker_comes_back.py: each writes a file
when it ends, so that the test sees which ran; ``slow`` works a while first, like a job."""

import time
from pathlib import Path

from celery import shared_task


@shared_task(acks_late=True)
def slow(path: str, seconds: float) -> None:
    Path(path).with_suffix(".started").touch()
    time.sleep(seconds)
    Path(path).touch()


@shared_task(acks_late=True)
def quick(path: str) -> None:
    Path(path).touch()
