"""Ordinary request latency with and without a slow-client attack on the real `analytics serve`.

Starts the embedded service (SQLite, 2 workers) on a free loopback port, times `--requests`
health checks and authenticated usage reads, then holds `--slow` connections that drip their
headers one byte every 0.5 s and `--idle` connections that send nothing, and times the same
requests again. Prints p50/p99 of both runs and the ratio (attack / baseline). Loopback only,
bounded in count and time.

    .venv/bin/python bench/slow_clients.py [--requests 200] [--slow 64] [--idle 500]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

ORG = "61cfb301-976e-513e-a7b8-f4d8bf8ec460"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "analytics_app.cli", *args], env=env,
                          capture_output=True, text=True, check=True, timeout=300).stdout


def timed(urls: list[tuple[str, dict[str, str]]]) -> list[float]:
    seconds = []
    for url, headers in urls:
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=60) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
    return seconds


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered), ordered[max(0, round(0.99 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slow", type=int, default=64)
    parser.add_argument("--idle", type=int, default=500)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
        env.update({"ANALYTICS_DATA_DIR": data, "ANALYTICS_PORT": str(port),
                    "ANALYTICS_WORKERS": "2", "ANALYTICS_REQUEST_HEADER_TIMEOUT_SECONDS": "300"})
        cli(env, "migrate")
        cli(env, "demo", "--events", "3000", "--days", "3", "--no-progress")
        key = re.search(r"ak_\w+", cli(env, "apikey", "create", "--org", ORG, "--role",
                                        "org_admin"))
        assert key is not None
        server = subprocess.Popen([sys.executable, "-m", "analytics_app.cli", "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}/analytics/v1"
            for _ in range(200):
                try:
                    timed([(f"{base}/status/healthz", {})])
                    break
                except OSError:
                    time.sleep(0.2)
            now = datetime.now(UTC).replace(microsecond=0)
            usage = (f"{base}/orgs/{ORG}/usage?start={(now - timedelta(days=2)).isoformat()}"
                     f"&end={now.isoformat()}").replace("+", "%2B")
            urls = [(f"{base}/status/healthz", {}), (usage, {"X-API-Key": key.group(0)})]
            work = [urls[i % 2] for i in range(args.requests)]
            baseline = timed(work)
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
            slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.slow)]
            stop = threading.Event()

            def drip() -> None:
                head = (b"GET /analytics/v1/status/healthz HTTP/1.1\r\nHost: x\r\n"
                        + b"X: y\r\n" * 999)
                sent = 0
                while not stop.wait(0.5):
                    for sock in slow:
                        sock.sendall(head[sent:sent + 1])
                    sent += 1

            dripper = threading.Thread(target=drip, daemon=True)
            dripper.start()
            time.sleep(2)
            attacked = timed(work)
            stop.set()
            dripper.join()
            for sock in idle + slow:
                sock.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    b50, b99 = percentiles(baseline)
    a50, a99 = percentiles(attacked)
    print(f"requests: {args.requests} (health and usage alternating), attack: {args.slow} slow "
          f"+ {args.idle} idle connections, 2 workers")
    print(f"baseline  p50 {b50 * 1000:7.2f} ms  p99 {b99 * 1000:7.2f} ms")
    print(f"attack    p50 {a50 * 1000:7.2f} ms  p99 {a99 * 1000:7.2f} ms")
    print(f"ratio     p50 {a50 / b50:7.2f}x    p99 {a99 / b99:7.2f}x")


if __name__ == "__main__":
    main()
