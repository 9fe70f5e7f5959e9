"""Memory of each web worker (``make bench-memory``).

Serves the project with gunicorn (``gunicorn.conf.py``, DEBUG off through ``bench/settings.py``,
``BENCH_WORKERS`` workers × ``BENCH_THREADS`` threads) on the database of DATABASE_URL, filled
by ``generate_bench_data`` (the national bench data). Reads each worker's resident memory
(``VmRSS`` of ``/proc/<pid>/status``) once the workers have started, then after a series of
requests: ``BENCH_ROUNDS`` rounds over the main pages of a chef de projet and of national
staff, from ``BENCH_CLIENTS`` clients at once so that every worker serves its share. Prints
each worker's figures, their mean and the machine's load. Asserts nothing.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "9402"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def pages_and_cookies() -> list[tuple[str, str]]:
    """(url, cookie) of the pages a series goes through, the users created once."""
    from django.conf import settings
    from django.test import Client

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from pvd.models import Role, User

    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit("Pas de données d'essai dans cette base : lancez « generate_bench_data ».")
    beneficiaire = beneficiaires[total // 2]
    national, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=national, kind=Role.Kind.NATIONAL)
    cdp, _ = User.objects.get_or_create(email="bench-cdp@pvd.invalid")
    role, _ = Role.objects.get_or_create(user=cdp, kind=Role.Kind.CHEF_PROJET)
    role.beneficiaires.set([beneficiaire])

    def cookie(user) -> str:
        client = Client()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    national_cookie, cdp_cookie = cookie(national), cookie(cdp)
    return [
        ("/healthz", ""),
        ("/", national_cookie),
        ("/", cdp_cookie),
        (f"/actions/beneficiaire/{beneficiaire.pk}/", cdp_cookie),
        ("/beneficiaires/", national_cookie),
        ("/beneficiaires/synthese/", national_cookie),
        ("/journal/", national_cookie),
        ("/carte/", national_cookie),
        ("/conventions/", national_cookie),
        ("/postes/", national_cookie),
        ("/mentions-legales/", cdp_cookie),
    ]


def serve() -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "pvd.wsgi",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "GUNICORN_ACCESS_LOG": ""},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            if len(workers(server.pid)) == WORKERS:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            sys.exit(f"gunicorn s'est arrêté au démarrage (code {server.returncode}).")
        time.sleep(0.2)
    server.terminate()
    sys.exit(f"gunicorn ne répond pas sur le port {PORT}.")


def workers(master: int) -> list[int]:
    """The gunicorn master's child processes (its workers)."""
    children = []
    for task in Path(f"/proc/{master}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(pid) for pid in text]
    return sorted(children)


def status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    return 0.0


def client(pages: list[tuple[str, str]], errors: list[str], rounds: int = ROUNDS) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    for _ in range(rounds):
        for url, cookie in pages:
            connection.request("GET", url, headers={"Cookie": cookie, "Host": "127.0.0.1"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{url} : {response.status}")
            # A new connection now and then: gunicorn hands it to any worker.
            connection.close()
    connection.close()


def main() -> None:
    if not Path("/proc/self/status").exists():
        sys.exit("Ce banc d'essai lit /proc (Linux).")
    setup()
    from django.conf import settings
    from django.db import connection

    pages = pages_and_cookies()
    print(f"Base : {settings.DATABASES['default']['NAME']}")
    connection.close()
    server = serve()
    try:
        pids = workers(server.pid)
        # Each worker imports the project on its first request: a few /healthz at once.
        warm = [
            threading.Thread(target=client, args=([("/healthz", "")], [], 1))
            for _ in range(4 * WORKERS)
        ]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        started = {pid: status_mib(pid, "VmRSS") for pid in pids}
        errors: list[str] = []
        threads = [threading.Thread(target=client, args=(pages, errors)) for _ in range(CLIENTS)]
        begun = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - begun
        after = {pid: status_mib(pid, "VmRSS") for pid in pids}
        peak = {pid: status_mib(pid, "VmHWM") for pid in pids}
        master = status_mib(server.pid, "VmRSS")
    finally:
        server.terminate()
        server.wait(timeout=30)

    requests = ROUNDS * CLIENTS * len(pages)
    print(
        f"gunicorn : {WORKERS} workers × {THREADS} fils ; {requests} requêtes sur "
        f"{len(pages)} pages en {wall:.1f} s ({CLIENTS} clients), {len(errors)} erreurs ; "
        f"charge de la machine {os.getloadavg()[0]:.1f}"
    )
    for pid in pids:
        print(
            f"Worker {pid} : {started[pid]:.0f} Mio une fois le projet chargé, "
            f"{after[pid]:.0f} Mio après la série (maximum {peak[pid]:.0f} Mio)"
        )
    print(
        f"Moyenne par worker : {statistics.mean(started.values()):.0f} Mio une fois chargé, "
        f"{statistics.mean(after.values()):.0f} Mio après la série ; maître : {master:.0f} Mio"
    )
    if errors:
        sys.exit("Erreurs : " + ", ".join(errors[:10]))


if __name__ == "__main__":
    main()
