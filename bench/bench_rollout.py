#!/usr/bin/env python3
"""Failed requests during updates: start-first against stop-first, in the same run.

    python bench/bench_rollout.py               # 5 updates per order, 2 replicas: about 1 minute
    python bench/bench_rollout.py --updates 10 --replicas 2

A stack runs ``--replicas`` busybox ``httpd`` containers behind the network
alias ``web``, and a client container on the same (test-made) network asks
``web`` for a page every 50 ms, logging OK or FAIL with the time each request
took. Each update changes an env value, so every replica is replaced: first
``--updates`` times with ``update.order: start-first``, then as many with
``stop-first``. The client's counts between the updates are the figures:
failed requests per order, and the p99 of request times (10 ms resolution: /proc/uptime). Target: 0 failed
requests for start-first.

Traffic stays on the stack's own network; the stack is named ``brollout-<random>``
and destroyed at the end.
"""
from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_apply import IMAGE, log, open_engine

# The web server, and the client asking it for a page every 50 ms: one line per request, OK or FAIL and the
# milliseconds it took (10 ms resolution: /proc/uptime). Filled into a spec: ``$$`` is a literal ``$`` there.
WEB = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
CLIENT = (r"cs() { read u _ < /proc/uptime; echo $${u%.*}$${u#*.}; }; while :; do s=$$(cs); "
          r"if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 8080 2>/dev/null | grep -q '200 OK'; "
          r"then r=OK; else r=FAIL; fi; echo $$r $$(( ($$(cs) - s) * 10 )); sleep 0.05; done")

SPEC = """name: {name}
networks:
  net: {{}}
containers:
  web:
    image: "{image}"
    command: ["sh", "-c", "{web}"]
    init: true
    stop_grace_period: 1s
    replicas: {replicas}
    update: {{order: {order}}}
    networks: {{net: {{aliases: [web]}}}}
    env: {{VERSION: "{version}"}}
    healthcheck: {{test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"], interval: 1s, retries: 3}}
  client:
    image: "{image}"
    command: ["sh", "-c", "{client}"]
    init: true
    stop_grace_period: 1s
    networks: [net]
"""


def _apply(spec: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "-f", str(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"apply failed:\n{done.stdout}{done.stderr}")


def client_lines(log: str) -> list[tuple[str, int]]:
    """The (OK|FAIL, ms) lines of the client's log."""
    out = []
    for line in log.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("OK", "FAIL") and parts[1].isdigit():
            out.append((parts[0], int(parts[1])))
    return out


def summary(window: list[tuple[str, int]]) -> tuple[int, int, int]:
    """(requests, failed requests, p99 ms) of a window of client lines."""
    times = sorted(ms for _, ms in window)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else 0
    return len(window), sum(1 for result, _ in window if result == "FAIL"), p99


def _lines(engine, name: str) -> list[tuple[str, int]]:
    return client_lines(engine.api.logs(f"{name}-client-1").decode(errors="replace"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    engine = open_engine()
    if engine is None:
        return 1
    name = f"brollout-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        spec = Path(tmp) / "stack.yaml"
        version = 0
        results = {}
        try:
            for order in ("start-first", "stop-first"):
                spec.write_text(SPEC.format(name=name, image=IMAGE, replicas=args.replicas, order=order,
                                            version=version, web=WEB, client=CLIENT))
                _apply(spec)
                time.sleep(3)  # the client runs before the updates
                before = len(_lines(engine, name))
                for _ in range(args.updates):
                    version += 1
                    spec.write_text(SPEC.format(name=name, image=IMAGE, replicas=args.replicas, order=order,
                                                version=version, web=WEB, client=CLIENT))
                    _apply(spec)
                    time.sleep(1)
                results[order] = summary(_lines(engine, name)[before:])
        finally:
            subprocess.run([sys.executable, "-m", "reconciler", "destroy", "-f", str(spec)], capture_output=True)
    log(f"{args.updates} updates of {args.replicas} replicas per order, a request every 50 ms:")
    log(f"{'order':<12} {'requests':>8} {'failed':>6} {'p99 ms':>7}")
    for order, (total, failed, p99) in results.items():
        log(f"{order:<12} {total:>8} {failed:>6} {p99:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
