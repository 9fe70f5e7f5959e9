"""gunicorn settings, read by `docker compose` (service `web`) and `make bench-pages`.

A request spends part of its time waiting for PostgreSQL: the threads of a worker (gthread)
overlap those waits while the workers share out the cores. Sizing: WEB_CONCURRENCY workers, one
or two per core (default: the number of cores), GUNICORN_THREADS threads each (default 4).
Each thread keeps its own database connection (CONN_MAX_AGE), so workers × threads, plus the
Celery worker's connections, must stay under PostgreSQL's max_connections (100 by default).
Each worker holds its own copy of the project in memory: about 120 MiB once loaded, 290 MiB
after a series of the main pages (make bench-memory, README « Dimensionnement »).
"""

import multiprocessing
import os

wsgi_app = "pvd.wsgi"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
timeout = 60
# "-": the access log on standard output; an empty value turns it off (benchmarks).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
