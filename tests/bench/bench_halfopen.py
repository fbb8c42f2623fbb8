"""Half-open HTTP connections against a live ``laserd serve``: does ``/health`` still answer?

Run::

    .venv/bin/python tests/bench/bench_halfopen.py [--sockets 1100] [--nofile 1024]
        [--seconds 30] [--addresses 1]

The daemon runs with ``RLIMIT_NOFILE`` = ``--nofile`` (1024 is the soft limit a service gets
without ``LimitNOFILE=``). The attacker opens ``--sockets`` connections from loopback
addresses 127.0.0.2, 127.0.0.3, ... (``--addresses`` of them, round robin), sends the first
line and one header of a request and never finishes it; every connection that the daemon
closes is opened again. Meanwhile a client on 127.0.0.1 asks ``/health`` once a second (in
a thread of its own).
Prints JSON: health answers and latency, how many attacker sockets the daemon holds at the end,
and how many bytes the daemon logged during the run.
"""

from __future__ import annotations

import argparse
import json
import resource
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.daemon.harness import Daemon

PARTIAL_HEAD = b"GET /api/v1/health HTTP/1.1\r\nHost: laserd\r\n"


def limit_nofile(n: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


def open_half(port: int, source: str) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.bind((source, 0))
        s.connect_ex(("127.0.0.1", port))
        # The handshake completes in the kernel even when laserd cannot accept(); the partial
        # head waits in the socket buffer.
        poller = select.poll()  # select() stops at descriptor 1023
        poller.register(s, select.POLLOUT)
        poller.poll(1000)
        s.send(PARTIAL_HEAD)
    except OSError:
        s.close()
        return None
    return s


def is_closed(s: socket.socket) -> bool:
    """The daemon closed it (EOF or reset), or answered it (a refusal)."""
    try:
        s.recv(4096, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True  # b"": closed; bytes: an answer to a request it never got (a refusal)


def health(port: int, timeout_s: float) -> float | None:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: laserd\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            return None
    except OSError:
        return None
    return time.monotonic() - started


def run(
    sockets: int, nofile: int, seconds: float, addresses: int, keep_log: Path | None = None
) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, sockets + 512)), hard))
    with tempfile.TemporaryDirectory(prefix="laserd-halfopen-") as tmp:
        d = Daemon(
            Path(tmp),
            config={"server": {"debug": False, "access_log": False}},
            preexec=limit_nofile(nofile),
        )
        try:
            d.start()
            d.wait_ready(120)
            before = health(d.port, 5)
            log_start = d.log_path.stat().st_size
            sources = [f"127.0.0.{2 + i}" for i in range(addresses)]
            held: list[socket.socket] = []
            reopened = 0
            for i in range(sockets):
                s = open_half(d.port, sources[i % addresses])
                if s is not None:
                    held.append(s)
            latencies: list[float] = []
            failures = 0
            stop = threading.Event()

            def probe() -> None:  # /health once a second, apart from the attacker's loop
                nonlocal failures
                while not stop.is_set():
                    tick = time.monotonic()
                    latency = health(d.port, 5)
                    if latency is None:
                        failures += 1
                    else:
                        latencies.append(latency)
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))

            prober = threading.Thread(target=probe, daemon=True)
            prober.start()
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                # Keep the pressure on: whatever the daemon closed is opened again.
                for j, s in enumerate(held):
                    if is_closed(s):
                        s.close()
                        fresh = open_half(d.port, sources[j % addresses])
                        reopened += 1
                        if fresh is not None:
                            held[j] = fresh
                    if time.monotonic() - started >= seconds:
                        break
                time.sleep(0.05)
            stop.set()
            prober.join()
            still_open = sum(1 for s in held if not is_closed(s))
            log_bytes = d.log_path.stat().st_size - log_start
            if keep_log is not None:
                keep_log.write_bytes(d.log_path.read_bytes()[:2_000_000])
            for s in held:
                s.close()
            alive = d.poll() is None
        finally:
            d.close()  # also when the run fails: no daemon left behind
    return {
        "command": "tests/bench/bench_halfopen.py",
        "sockets": sockets,
        "addresses": addresses,
        "daemon_nofile": nofile,
        "seconds": seconds,
        "health_before_attack_s": None if before is None else round(before, 4),
        "health_answers": len(latencies),
        "health_failures": failures,
        "health_median_s": round(statistics.median(latencies), 4) if latencies else None,
        "health_max_s": round(max(latencies), 4) if latencies else None,
        "attacker_sockets_open_at_end": still_open,
        "attacker_sockets_reopened": reopened,
        "daemon_log_bytes": log_bytes,
        "daemon_alive": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1100)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--addresses", type=int, default=1)
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the log's first 2 MB")
    args = parser.parse_args()
    summary = run(args.sockets, args.nofile, args.seconds, args.addresses, args.keep_log)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
