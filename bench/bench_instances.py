"""Speed past one machine (``make bench-instances``): one instance, then two, behind HAProxy.

On the database of DATABASE_URL (the demo, or the national bench data), with the settings of
production (``bench/settings.py``: DEBUG off) and its own redis-server as the shared cache:

1. one gunicorn instance (``BENCH_WORKERS`` workers × ``BENCH_THREADS`` threads) behind HAProxy,
   loaded by wrk (``BENCH_CONNECTIONS`` connections for ``BENCH_SECONDS`` seconds) over a few
   logged-in pages: pages per second;
2. two such instances behind the same HAProxy, the same load: pages per second, and the ratio
   to the first in the same run (absolute figures move with the shared machine's load);
3. a rolling restart under 20 concurrent users: each instance in turn is drained (HAProxy's
   runtime API: no new request, those in progress end), stopped (SIGTERM), started again and
   put back once /healthz answers, while wrk runs; HAProxy checks /healthz every 500 ms and
   resends a refused request to the other instance. Errors: the requests that got no 200
   (wrk's non-2xx responses and socket errors).

Everything listens on 127.0.0.1, on ports found free. Bounded: about a minute and a half.
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import (  # noqa: E402
    free_ports,
    haproxy,
    haproxy_sessions,
    listening,
    start_gunicorn,
    start_haproxy,
    start_redis,
    stop,
    wait_for,
)

WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
USERS = 20  # concurrent users during the rolling restart

WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Cookie"] = "%s"})
end
"""


def setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def reader() -> tuple[str, list[str]]:
    """A chef de projet of the data, their session cookie and the pages they read."""
    from django.conf import settings
    from django.test import Client

    from communes.models import Beneficiaire
    from pvd.models import Role, User

    beneficiaire = Beneficiaire.objects.filter(fiches__isnull=False).order_by("pk").first()
    if beneficiaire is None:
        sys.exit("Aucun plan d'action dans cette base : lancez « manage.py seed_demo ».")
    user, _ = User.objects.get_or_create(email="bench-instances@pvd.invalid")
    role, _ = Role.objects.get_or_create(user=user, kind=Role.Kind.CHEF_PROJET)
    role.beneficiaires.set([beneficiaire])
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    pages = [
        "/",
        "/mentions-legales/",
        f"/actions/beneficiaire/{beneficiaire.pk}/",
        "/conventions/",
    ]
    return cookie, pages


def wrk(directory: Path, url: str, cookie: str, pages: list[str], connections: int,
        seconds: int) -> subprocess.Popen:  # fmt: skip
    script = directory / "pages.lua"
    script.write_text(WRK_SCRIPT % (", ".join(f'"{p}"' for p in pages), cookie))
    return subprocess.Popen(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
         "-s", str(script), url],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def figures(output: str) -> dict:
    def number(pattern: str) -> float:
        found = re.search(pattern, output)
        return float(found[1]) if found else 0.0

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        "socket_detail": socket_errors[0] if socket_errors else "",
    }


def healthy(port: int) -> bool:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status == 200


def main() -> None:
    for tool in ("wrk", "haproxy", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} manque : sudo apt-get install {tool}")
    setup()
    from django.conf import settings
    from django.db import connection

    cookie, pages = reader()
    db = settings.DATABASES["default"]
    connection.close()
    directory = Path(tempfile.mkdtemp(prefix="bench-instances-"))
    redis_port, port_a, port_b, proxy_port = free_ports(4)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PVD_INSTANCES": "2",
        "MEDIA_ROOT": str(directory / "media"),
        "LOG_LEVEL": "WARNING",
    }
    instances: dict[str, subprocess.Popen] = {}
    ports = {"a": port_a, "b": port_b}
    redis = start_redis(directory, redis_port)
    proxy = None

    def start(name: str) -> None:
        instances[name] = start_gunicorn(directory, name, ports[name], env, WORKERS, THREADS)
        wait_for(lambda: healthy(ports[name]), f"l'instance {name} ne répond pas")

    def proxy_for(names: list[str]) -> subprocess.Popen:
        nonlocal proxy
        stop(proxy)
        wait_for(lambda: not listening(proxy_port), "HAProxy ne s'arrête pas")
        backends = {n: ports[n] for n in names}
        proxy = start_haproxy(directory, proxy_port, backends, maxconn=WORKERS * THREADS)
        return proxy

    base = f"http://127.0.0.1:{proxy_port}"
    print(
        f"Base {db['NAME']} ; pages : {', '.join(pages)} ; par instance {WORKERS} worker(s) × "
        f"{THREADS} fils ; wrk {CONNECTIONS} connexions, {SECONDS} s ; {os.cpu_count()} cœurs"
    )
    try:
        # Both instances up from the start; HAProxy sends to one, then to both, in turns, so
        # that the machine's changing load (it is shared) weighs on both measures alike.
        start("a")
        start("b")
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for names in (["a"], ["a", "b"]) * ROUNDS:
            proxy_for(names)
            wrk(directory, base, cookie, pages, CONNECTIONS, 2).communicate()  # warm-up
            output = wrk(directory, base, cookie, pages, CONNECTIONS, SECONDS).communicate()[0]
            runs[len(names)].append(figures(output))
        one, two = (statistics.median(r["rps"] for r in runs[n]) for n in (1, 2))
        for label, n, rps in (("Une instance  ", 1, one), ("Deux instances", 2, two)):
            errors = sum(r["non_2xx"] + r["socket_errors"] for r in runs[n])
            each = ", ".join(f"{r['rps']:.1f}" for r in runs[n])
            print(f"{label}: {rps:7.1f} pages/s (médiane de {each} ; {errors} erreur(s))")
        print(f"Rapport deux/une : {two / one if one else 0:.2f}")

        # Rolling restart: each instance stopped then started again, under USERS users.
        proxy_for(["a", "b"])
        load = wrk(directory, base, cookie, pages, USERS, 40)
        time.sleep(4)
        restarts = []
        for name in ("a", "b"):
            began = time.monotonic()
            # Drained first: no new request goes to it, those in progress end.
            haproxy(directory, f"set server portal/{name} state drain")
            wait_for(lambda n=name: haproxy_sessions(directory, n) == 0, "drain", patience=60)
            instances[name].send_signal(signal.SIGTERM)
            instances[name].wait(timeout=60)
            time.sleep(2)  # served by the other one alone meanwhile
            start(name)
            haproxy(directory, f"set server portal/{name} state ready")
            time.sleep(3)  # HAProxy sees it up (rise) before the next one stops
            restarts.append(time.monotonic() - began)
        rolling = figures(load.communicate()[0])
        errors = rolling["non_2xx"] + rolling["socket_errors"]
        print(
            f"Redémarrage progressif sous {USERS} utilisateurs : {rolling['requests']} requêtes, "
            f"{errors} erreur(s) ({rolling['non_2xx']} réponses non 2xx, "
            f"{rolling['socket_errors']} erreurs de connexion : "
            f"{rolling['socket_detail'] or '-'}) ; chaque instance arrêtée puis "
            f"relancée en {', '.join(f'{s:.0f} s' for s in restarts)}"
        )
    finally:
        stop(proxy)
        for process in instances.values():
            stop(process)
        stop(redis)
        print(f"Journaux (HAProxy : les réponses autres que 200) : {directory}")


if __name__ == "__main__":
    main()
