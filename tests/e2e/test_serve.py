"""The real service started as a user starts it: `analytics` subprocesses on a temp data dir."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

API = "/analytics/v1"
KEY = re.compile(r"ak_[0-9a-f]{16}_[0-9a-f]{64}")
ORG = "61cfb301-976e-513e-a7b8-f4d8bf8ec460"  # the first demo org (stable for every seed)
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """One data dir and port; runs `analytics` commands and the server against them."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("ANALYTICS_") or k.startswith("ANALYTICS_TEST_")}
        self.env.update({
            "ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_PORT": str(self.port),
            "ANALYTICS_WORKERS": "1", "ANALYTICS_WORKER_POLL_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        })
        self.server: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.log = data_dir.parent / f"{data_dir.name}-serve.log"  # the server's stderr

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one CLI command to completion."""
        return subprocess.run([sys.executable, "-m", "analytics_app.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)

    def start(self, *args: str) -> None:
        """Start `analytics serve` and wait until /status/healthz answers."""
        self.lines = queue.Queue()
        with self.log.open("a") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "analytics_app.cli", "serve", *args], env=self.env,
                stdout=subprocess.PIPE, stderr=log, text=True,
            )
        stdout = self.server.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout],
                         daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.server.poll() is None, "analytics serve exited early"
            try:
                if self.get("/status/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        pytest.fail("analytics serve did not become healthy")

    def migrate_and_demo(self, *, events: int, days: int) -> str:
        """`analytics migrate`, then `analytics demo`; the API key the demo printed."""
        assert self.run("migrate").returncode == 0
        demo = self.run("demo", "--events", str(events), "--days", str(days), "--no-progress")
        assert demo.returncode == 0, demo.stderr
        key = KEY.search(demo.stdout)
        assert key is not None
        return key.group(0)

    def stop(self) -> int:
        """SIGTERM the server and return its exit code."""
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        code = self.server.wait(timeout=60)
        self.server = None
        return code

    def request(self, method: str, path: str, key: str | None = None,
                body: object = None) -> tuple[int, bytes, dict[str, str]]:
        """One HTTP request against the API prefix."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{API}{path}", data=data, method=method)
        if key:
            request.add_header("X-API-Key", key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path: str, key: str | None = None) -> tuple[int, bytes]:
        """GET and return (status, body)."""
        status, body, _ = self.request("GET", path, key)
        return status, body

    def json(self, path: str, key: str) -> Any:
        """GET a 200 JSON body."""
        status, body = self.get(path, key)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A service on a temp data dir; the server is always stopped at the end."""
    svc = Service(tmp_path)
    yield svc
    if svc.server is not None and svc.server.poll() is None:
        svc.server.kill()
        svc.server.wait()


def _window() -> str:
    now = datetime.now(UTC)
    start = (now - timedelta(days=4)).strftime("%Y-%m-%dT00:00:00Z")
    return f"start={start}&end={(now + timedelta(days=1)).strftime('%Y-%m-%dT00:00:00Z')}"


def _export_and_download(service: Service, key: str) -> tuple[dict[str, Any], bytes]:
    now = datetime.now(UTC)
    status, body, _ = service.request("POST", f"/orgs/{ORG}/exports", key, {
        "timeRange": {"start": (now - timedelta(days=3)).isoformat(), "end": now.isoformat()},
        "granularity": "daily",
    })
    assert status == 202, body
    job_path = f"/orgs/{ORG}/exports/{json.loads(body)['jobId']}"
    deadline = time.monotonic() + 60
    job = service.json(job_path, key)
    while job["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = service.json(job_path, key)
    assert job["status"] == "succeeded", job
    status, csv_bytes = service.get(job_path + "/download", key)
    assert status == 200
    return job, csv_bytes


def test_serve_answers_queries_exports_and_keeps_data_across_restart(service: Service):
    """migrate, demo, serve: usage, reliability, freshness and an export; data survives restart."""
    key = service.migrate_and_demo(events=1500, days=3)
    service.start()
    usage = service.json(f"/orgs/{ORG}/usage?{_window()}&granularity=day", key)
    assert usage["totals"]["invocations"] > 0
    assert usage["freshness"]["status"] == "fresh"
    reliability = service.json(f"/orgs/{ORG}/reliability?{_window()}&percentile=p95", key)
    assert reliability["totals"]["latencyMs"]["p95"] > 0
    freshness = service.json(f"/orgs/{ORG}/freshness", key)
    assert len(freshness["entries"]) == 5
    job, csv_bytes = _export_and_download(service, key)
    rows = csv_bytes.decode().strip().splitlines()
    assert rows[0].startswith("bucket_start,bucket_end,timezone,org_id,model_id")
    assert len(rows) - 1 == job["rowCount"]
    assert service.stop() == 0

    service.start()
    again = service.json(f"/orgs/{ORG}/usage?{_window()}&granularity=day", key)
    assert again["totals"] == usage["totals"]
    assert service.json(f"/orgs/{ORG}/exports/{job['jobId']}", key)["status"] == "succeeded"
    assert service.get(f"/orgs/{ORG}/exports/{job['jobId']}/download", key) == (200, csv_bytes)
    assert service.stop() == 0


def test_serve_refuses_an_unmigrated_database(service: Service):
    """Without `analytics migrate` the service does not start and says what to do."""
    result = service.run("serve")
    assert result.returncode == 2
    assert "analytics migrate" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl on PATH")
def test_serve_demo_prints_curl_commands_that_work(service: Service, tmp_path: Path):
    """`serve --demo` seeds data and prints commands that return data and download an export."""
    assert service.run("migrate").returncode == 0
    service.start("--demo")
    banner: list[str] = []
    while not banner or not banner[-1].startswith("Health:"):
        banner.append(service.lines.get(timeout=60).rstrip("\n"))
    commands = [line.strip() for line in banner if line.startswith("  ")
                and line.strip().split(" ")[0] in ("export", "curl", "JOB=$(curl", "sleep")]
    assert len(commands) >= 7
    script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert '"series"' in done.stdout
    assert '"entries"' in done.stdout
    csv_text = (tmp_path / "export.csv").read_text()
    assert csv_text.startswith("bucket_start,bucket_end,timezone,org_id,model_id")
    assert service.stop() == 0


def test_worker_stops_cleanly_on_sigterm(service: Service):
    """`analytics worker` exits 0 on SIGTERM."""
    assert service.run("migrate").returncode == 0
    worker = subprocess.Popen([sys.executable, "-m", "analytics_app.cli", "worker"],
                              env=service.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        for line in worker.stderr:
            if "export worker" in line and "started" in line:
                break
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_embedded_sqlite_serves_concurrent_idempotent_creates(service: Service):
    """Two workers on one SQLite file: 24 concurrent export creates with Idempotency-Key all
    succeed, one job per key, and neither boot nor the burst logs 'database is locked'."""
    assert service.run("migrate").returncode == 0
    assert service.run("demo", "--events", "600", "--days", "40", "--no-progress").returncode == 0
    key = KEY.search(service.run("apikey", "create", "--org", ORG, "--role", "org_admin").stdout)
    assert key is not None
    service.env.update({"ANALYTICS_WORKERS": "2"})
    service.start()
    now = datetime.now(UTC).replace(microsecond=0)
    body = {"timeRange": {"start": (now - timedelta(days=2)).isoformat(),
                          "end": now.isoformat()}, "granularity": "daily"}
    results: list[tuple[int, str, str]] = []

    def create(idempotency_key: str) -> None:
        request = urllib.request.Request(
            f"{service.base}{API}/orgs/{ORG}/exports", data=json.dumps(body).encode(),
            method="POST", headers={"X-API-Key": key.group(0), "Idempotency-Key": idempotency_key,
                                    "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                results.append((response.status, idempotency_key,
                                json.loads(response.read())["jobId"]))
        except urllib.error.HTTPError as e:
            results.append((e.code, idempotency_key, e.read().decode()))

    threads = [threading.Thread(target=create, args=(f"burst-{i % 12}",)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert service.stop() == 0
    assert sorted(status for status, _, _ in results) == [200] * 12 + [202] * 12, results
    jobs: dict[str, set[str]] = {}
    for _, idempotency_key, job_id in results:
        jobs.setdefault(idempotency_key, set()).add(job_id)
    assert all(len(ids) == 1 for ids in jobs.values()), jobs
    assert len(jobs) == 12
    assert "database is locked" not in service.log.read_text()


def _raw(service: Service, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are on a fresh connection; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):  # every answer here closes the connection
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response: {data!r}"
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_server_level_errors_are_problem_json_and_chunked_bodies_are_read(service: Service):
    """414, 431 and bad framing come back as problem+json; a chunked body is read, within the
    body size limit (413 above it)."""
    assert service.run("migrate").returncode == 0
    key = KEY.search(service.run("apikey", "create", "--org", ORG, "--role", "org_admin").stdout)
    assert key is not None
    service.env["ANALYTICS_MAX_BODY_BYTES"] = "2048"
    service.start()
    host = b"Host: 127.0.0.1\r\n"
    cases = {
        414: b"GET /analytics/v1/status/healthz?" + b"x" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        431: b"GET /analytics/v1/status/healthz HTTP/1.1\r\n" + host
        + b"X-Big: " + b"y" * 9000 + b"\r\n\r\n",
        400: b"GET /analytics/v1/status/healthz HTTP/1.1\r\n" + host
        + b"Content-Length: nope\r\n\r\n",
    }
    for status, request in cases.items():
        got, headers, body = _raw(service, request)
        assert got == status, body
        assert headers["content-type"] == "application/problem+json"
        document = json.loads(body)
        assert document["status"] == status
        assert {"type", "title", "detail", "instance"} <= set(document)

    def chunked(payload: bytes) -> bytes:
        pieces = [payload[i:i + 100] for i in range(0, len(payload), 100)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return (b"POST /analytics/v1/events/validate HTTP/1.1\r\n" + host
                + b"X-API-Key: " + key.group(0).encode() + b"\r\n"
                + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                + b"Connection: close\r\n\r\n" + framed)

    event = {"eventId": "0f8fad5b-d9cb-469f-a165-70867728950e", "orgId": ORG,
             "modelId": "16fd2706-8baf-433b-82eb-8c7fada847da",
             "occurredAt": datetime.now(UTC).isoformat(), "status": "success",
             "latencyMs": 5, "inputTokens": 1, "outputTokens": 1, "costEstimateCents": 1}
    got, _, body = _raw(service, chunked(json.dumps(event).encode()))
    assert got == 204, body
    got, headers, body = _raw(service, chunked(json.dumps({**event, "latencyMs": -1}).encode()))
    assert got == 400
    assert json.loads(body)["errors"][0]["field"] == "latencyMs"
    got, headers, body = _raw(service, chunked(b" " * 3000 + json.dumps(event).encode()))
    assert got == 413, body
    assert headers["content-type"] == "application/problem+json"


class SlowClients:
    """`slow` connections that drip a request head one byte at a time, and `idle` ones that
    never send anything, all held open against the service until `close()`."""

    def __init__(self, port: int, slow: int, idle: int) -> None:
        self.idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
        self.slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(slow)]
        self._stop = threading.Event()
        self._head = (b"GET /analytics/v1/status/healthz HTTP/1.1\r\nHost: x\r\n"
                      + b"X-Pad: a\r\n" * 500)
        self.sent = 0
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(0.5) and self.sent < len(self._head):
            for sock in self.slow:
                sock.sendall(self._head[self.sent:self.sent + 1])
            self.sent += 1

    def all_open(self) -> bool:
        """Whether the server has closed none of the connections (a read would see EOF)."""
        for sock in self.idle + self.slow:
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    return False
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.idle + self.slow:
            sock.close()


def test_slow_and_idle_clients_do_not_starve_other_requests(service: Service):
    """64 connections dripping their headers and 500 idle ones are held open while ordinary
    requests (health and an authenticated usage read) keep being answered on two workers."""
    import resource  # noqa: PLC0415

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2000:
        pytest.skip(f"needs 2,000 open files, the limit is {soft}")
    assert service.run("migrate").returncode == 0
    key = KEY.search(service.run("apikey", "create", "--org", ORG, "--role", "org_admin").stdout)
    assert key is not None
    service.env.update({"ANALYTICS_WORKERS": "2",
                        "ANALYTICS_REQUEST_HEADER_TIMEOUT_SECONDS": "120"})
    service.start()
    now = datetime.now(UTC).replace(microsecond=0)
    usage = (f"/orgs/{ORG}/usage?start={(now - timedelta(days=1)).isoformat()}"
             f"&end={now.isoformat()}").replace("+", "%2B")
    attack = SlowClients(service.port, slow=64, idle=500)
    try:
        time.sleep(2)  # let every attack connection be accepted and start dripping
        answers = [service.get("/status/healthz")[0] for _ in range(20)]
        answers += [service.get(usage, key.group(0))[0] for _ in range(10)]
        assert answers == [200] * 30
        assert attack.sent > 0
        assert attack.all_open()  # the attack was in force for every ordinary request
    finally:
        attack.close()
    assert service.stop() == 0


def test_a_request_that_does_not_arrive_in_time_gets_408(service: Service):
    """A head still incomplete at the header deadline, or a body short of its Content-Length
    at the body deadline, is answered 408 problem+json and the connection closed."""
    assert service.run("migrate").returncode == 0
    service.env.update({"ANALYTICS_REQUEST_HEADER_TIMEOUT_SECONDS": "1",
                        "ANALYTICS_REQUEST_BODY_TIMEOUT_SECONDS": "1"})
    service.start()
    partial_head = b"GET /analytics/v1/status/healthz HTTP/1.1\r\nHost: x\r\nX-A"
    partial_body = (b"POST /analytics/v1/events HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ev")
    for request in (partial_head, partial_body):
        status, headers, body = _raw(service, request)
        assert status == 408
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["status"] == 408
    assert service.get("/status/healthz")[0] == 200


def test_a_client_that_expects_100_continue_is_answered_before_it_sends_its_body(
    service: Service,
):
    """The worker says 100 Continue once the head is in; the body then gets its real answer."""
    assert service.run("migrate").returncode == 0
    key = KEY.search(service.run("apikey", "create", "--org", ORG, "--role", "org_admin").stdout)
    assert key is not None
    service.start()
    body = json.dumps({"eventId": "0f8fad5b-d9cb-469f-a165-70867728950e", "orgId": ORG,
                       "modelId": "16fd2706-8baf-433b-82eb-8c7fada847da",
                       "occurredAt": datetime.now(UTC).isoformat(), "status": "success",
                       "latencyMs": 5, "inputTokens": 1, "outputTokens": 1,
                       "costEstimateCents": 1}).encode()
    head = (b"POST /analytics/v1/events/validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-API-Key: " + key.group(0).encode() + b"\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 204"), answer
