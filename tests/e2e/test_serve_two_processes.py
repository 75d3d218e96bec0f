"""Two `metrolex serve` processes on one PostgreSQL store: one scheduler active, notices issued once."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
FACTS = Path(__file__).parents[1] / "fixtures" / "contract-example.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
            return json.loads(r.read())
    except Exception:
        return None


def test_two_serve_processes_one_scheduler_notices_once(pg_database, tmp_path):
    env = dict(os.environ, METROLEX_STORE=pg_database, METROLEX_ENGINE="reference")
    cli = [sys.executable, "-m", "adapters.cli"]
    subprocess.run(cli + ["load", str(FACTS)], env=env, check=True, capture_output=True, timeout=120)
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen(cli + ["serve", "--port", str(p)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / f"serve{i}.log", "w")) for i, p in enumerate(ports)]
    try:
        deadline = time.time() + 60
        states = [None, None]
        while time.time() < deadline and not all(states):
            states = [_health(p) for p in ports]
            time.sleep(0.3)
        assert all(states), [(tmp_path / f"serve{i}.log").read_text()[-2000:] for i in range(2)]
        roles = sorted(s["scheduler"] for s in states)
        assert roles == ["leader", "standby"], states
        # The leader's start-up catch-up sweep issued today's notices; give it time, then count.
        import psycopg2
        conn = psycopg2.connect(pg_database)
        try:
            for _ in range(100):
                cur = conn.cursor()
                cur.execute("SELECT count(*) FROM sweeps")
                if cur.fetchone()[0] >= 1:
                    break
                time.sleep(0.3)
            cur.execute("SELECT count(*), count(DISTINCT key) FROM notices")
            total, distinct = cur.fetchone()
            assert total == distinct and total > 0
            cur.execute("SELECT count(*) FROM record_events WHERE topic LIKE 'domain.notice:Notice.Issued'")
            assert cur.fetchone()[0] == total
        finally:
            conn.close()
        # The leader stops; the standby takes over.
        leader = [i for i, s in enumerate(states) if s["scheduler"] == "leader"][0]
        procs[leader].send_signal(signal.SIGTERM)
        assert procs[leader].wait(timeout=30) == 0
        other = ports[1 - leader]
        for _ in range(100):
            h = _health(other)
            if h and h.get("scheduler") == "leader":
                break
            time.sleep(0.2)
        assert _health(other)["scheduler"] == "leader"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
