"""API key records kept by a process while it listens to PostgreSQL for key changes.

Every authenticated request used to read its key from the database (a pool checkout and a
round trip, ~0.5 ms). `NotifiedKeyCache` keeps the records of valid keys in memory instead, and
stays exact the way PostgreSQL lets a process learn of changes made by others: revoking a key
sends `NOTIFY analytics_api_keys, '<key id>'` in the revoking transaction
(`SqlApiKeyStore.revoke`), which PostgreSQL delivers when that transaction commits, and a
thread of each process holds a `LISTEN` connection and drops the key (and moves the
`generation`) on each notice.

- Nothing is kept unless the listening connection is up: at start, and whenever the connection
  fails, every kept record is dropped and requests read the database, until the thread has
  listened again. TCP keepalives and a probe every few seconds notice a silent network loss
  within ~15 s (then the records go).
- A request that read a record from the database keeps it only if no notice arrived since it
  started reading (the generation), so a revocation that commits between its read and its put
  is never overwritten by the stale record.
- A revoked key is thus refused by every process as soon as the notice arrives: milliseconds
  after the revoking commit, the same bound as a request already past its key check.
- The thread starts on first use in each process (gunicorn forks workers after loading the
  app), so each worker listens on its own connection.
"""

from __future__ import annotations

import logging
import os
import threading

import psycopg

from analytics_core.records import ApiKeyRecord

log = logging.getLogger(__name__)

CHANNEL = "analytics_api_keys"
MAX_KEYS = 10_000
_PROBE_SECONDS = 5.0
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
               "keepalives_count": 3}


class NotifiedKeyCache:
    """The `ApiKeyCache` of one process on PostgreSQL (see the module docstring)."""

    def __init__(self, url: str, *, connect_timeout: int = 5) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._records: dict[str, ApiKeyRecord] = {}
        self._generation = 0
        self._listening = False
        self._pid: int | None = None
        self._stop = threading.Event()
        self.backend_pid: int | None = None  # the listening connection's server process

    def generation(self) -> int:
        """Changes on every notice and (re)connection; -1 while not listening."""
        self._started()
        with self._lock:
            return self._generation if self._listening else -1

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """A kept record (None while not listening)."""
        self._started()
        with self._lock:
            return self._records.get(key_id) if self._listening else None

    def put(self, record: ApiKeyRecord, generation: int) -> None:
        """Keep a record read after `generation()` returned `generation`, if nothing moved."""
        with self._lock:
            if not self._listening or generation < 0 or generation != self._generation:
                return
            if len(self._records) >= MAX_KEYS:
                self._records.clear()
            self._records[record.key_id] = record

    @property
    def listening(self) -> bool:
        """Whether the listening connection is up (records are kept only then)."""
        with self._lock:
            return self._listening

    def close(self) -> None:
        """Stop listening (the thread ends within a probe interval)."""
        self._stop.set()

    def _started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid  # a forked child: a fresh thread and nothing kept
            self._records = {}
            self._listening = False
            self._generation += 1
        threading.Thread(target=self._listen, name="analytics-key-notices", daemon=True).start()

    def _dropped(self) -> None:
        with self._lock:
            self._listening = False
            self._records = {}
            self._generation += 1

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True,
                                     connect_timeout=self._connect_timeout,
                                     **_KEEPALIVES) as conn:  # type: ignore[arg-type]
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    with self._lock:
                        self._listening = True
                        self._generation += 1
                    backoff = 0.5
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=_PROBE_SECONDS):
                            with self._lock:
                                self._records.pop(notice.payload, None)
                                self._generation += 1
                        conn.execute("SELECT 1")  # a broken connection raises here
            except Exception as e:  # any failure: drop everything, retry
                if not self._stop.is_set():
                    log.warning("API key notices: listening connection lost (%s); keys are "
                                "read from the database until it is back", type(e).__name__)
            finally:
                self._dropped()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
