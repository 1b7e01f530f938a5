#!/usr/bin/env python3
"""Failed requests during Swarm rolling updates: start-first against stop-first, in the same run.

    python bench/bench_swarm_rollout.py                  # 3 updates per order, 1 replica: about 1.5 minutes
    python bench/bench_swarm_rollout.py --updates 5 --replicas 2
    python bench/bench_swarm_rollout.py --endpoint-mode vip   # needs a kernel with IPVS

Needs root: it uses engines 4 (manager) and 5 (worker) of ``scripts/engines.sh``
as a two-node Swarm (``engines.sh swarm 4 5``, with the state directory,
prefix and bridge the swarm tests use; left running when it was running
before, else torn down at the end). A ``runtime: swarm`` stack runs
``--replicas`` busybox ``httpd`` tasks as the service ``web`` (a healthcheck
with ``nc``), and a ``client`` service on the same overlay network asks
``web`` for a page every 50 ms with ``nc``, logging OK or FAIL with the time
each request took (10 ms resolution: /proc/uptime). Each update changes an env
value, so the Swarm rolls every task over (``service update``, same service);
the next update is applied once the Swarm reports the previous one completed.
First ``--updates`` times with ``update.order: start-first``, then as many
with ``stop-first``. The figures: requests, failed requests and p99 per order.
Target (issue 9): 0 failed requests for start-first.

``--endpoint-mode`` is ``dnsrr`` by default: the service name resolves to the
tasks' addresses. Swarm's ``vip`` needs the kernel's IPVS; without it
(``CONFIG_IP_VS`` unset, as on the CI VMs) every request to the VIP fails.

The stack is ``bswroll-<id>``, destroyed at the end; state and locks in a temp dir.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import docker

from bench_apply import IMAGE, BenchError, exit_with, log, run_child, run_on_extra_engines
from bench_rollout import CLIENT, WEB, client_lines, summary
from bench_swarm import MANAGER_URL, swarm_down, swarm_up

from reconciler.waiting import PollTimeout, poll_until

WORKER_URL = "unix:///run/reconciler-host5.sock"
ORDERS = ("start-first", "stop-first")

SPEC = """name: {name}
runtime: swarm
networks:
  net: {{driver: overlay, attachable: true}}
containers:
  web:
    image: "{image}"
    command: ["sh", "-c", "{web}"]
    init: true
    stop_grace_period: 2s
    replicas: {replicas}
    endpoint_mode: {mode}
    update: {{order: {order}, min_ready: 2s}}
    networks: [net]
    env: {{VERSION: "{version}"}}
    healthcheck: {{test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"], interval: 1s, retries: 3}}
  client:
    image: "{image}"
    command: ["sh", "-c", "{client}"]
    init: true
    stop_grace_period: 1s
    networks: [net]
"""


def wait_for(check, timeout: float, what: str) -> None:
    try:
        poll_until(check, timeout=timeout, interval=0.5)
    except PollTimeout:
        raise BenchError(f"timed out after {timeout:g} s waiting for {what}") from None


class RolloutBench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.stack = f"bswroll-{secrets.token_hex(4)}"
        self.spec = tmp / "stack.yaml"
        self.env = dict(os.environ, RECONCILER_LOCK_DIR=str(tmp / "locks"), RECONCILER_STATE_DIR=str(tmp / "state"),
                        RECONCILER_PLUGINS="reconciler_swarm")
        self.api = docker.APIClient(base_url=MANAGER_URL, version="auto", timeout=60)
        self.interrupted = False
        self.version = 0

    def apply(self, order: str) -> None:
        self.spec.write_text(SPEC.format(name=self.stack, image=IMAGE, replicas=self.args.replicas, order=order,
                                         mode=self.args.endpoint_mode, version=self.version, web=WEB,
                                         client=CLIENT))
        run_child([sys.executable, "-m", "reconciler", "apply", "-f", str(self.spec), "--engine", MANAGER_URL],
                  env=self.env, cwd=str(self.tmp))

    def running(self, service: str) -> list[dict]:
        tasks = self.api.tasks(filters={"service": [service], "desired-state": ["running"]})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def updated(self) -> bool:
        """The Swarm's rolling update completed (or none was needed) and every running task is of this version."""
        web = f"{self.stack}_web"
        state = (self.api.inspect_service(web).get("UpdateStatus") or {}).get("State", "completed")
        tasks = self.api.tasks(filters={"service": [web], "desired-state": ["running"]})
        new = [t for t in self.running(web)
               if f"VERSION={self.version}" in t["Spec"]["ContainerSpec"].get("Env", [])]
        return state == "completed" and len(new) == len(tasks) == self.args.replicas

    def client_lines(self) -> list[tuple[str, int]]:
        """The client's (OK|FAIL, ms) lines, read through the engine of the node its task runs on."""
        task = self.running(f"{self.stack}_client")[0]
        manager_node = self.api.info()["Swarm"]["NodeID"]
        url = MANAGER_URL if task["NodeID"] == manager_node else WORKER_URL
        return client_lines(docker.APIClient(base_url=url, version="auto", timeout=60).logs(
            task["Status"]["ContainerStatus"]["ContainerID"]).decode(errors="replace"))

    def run(self) -> dict[str, tuple[int, int, int, list[int]]]:
        results = {}
        for order in ORDERS:
            self.apply(order)  # the order changes the UpdateConfig only: no task is replaced
            wait_for(self.updated, 120, f"{self.args.replicas} web task(s)")
            wait_for(lambda: self.running(f"{self.stack}_client") and
                     [r for r, _ in self.client_lines()[-10:]] == ["OK"] * 10, 90, "the client to be answered")
            before = len(self.client_lines())
            per_update = []
            for _ in range(self.args.updates):
                mark = len(self.client_lines())
                self.version += 1
                self.apply(order)
                wait_for(self.updated, 120, f"the {order} update to complete")
                time.sleep(1)  # the client's requests to the old tasks are logged
                per_update.append(sum(1 for r, _ in self.client_lines()[mark:] if r == "FAIL"))
            results[order] = (*summary(self.client_lines()[before:]), per_update)
        return results

    def destroy(self) -> None:
        run_child([sys.executable, "-m", "reconciler", "destroy", "-f", str(self.spec), "--engine", MANAGER_URL],
                  env=self.env, cwd=str(self.tmp), check=False)


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [f"{args.updates} Swarm rolling updates of {args.replicas} replica(s) per order, endpoint_mode "
             f"{args.endpoint_mode}, a request every 50 ms (two-node swarm):",
             f"{'order':<12} {'requests':>8} {'failed':>6} {'p99 ms':>7}  failed per update"]
    for order, (total, failed, p99, per_update) in results.items():
        lines.append(f"{order:<12} {total:>8} {failed:>6} {p99:>7}  {per_update}")
    start_failed = results["start-first"][1]
    lines.append(f"verdict: start-first {'meets' if start_failed == 0 else 'misses'} the target "
                 f"(0 failed requests): {start_failed} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--endpoint-mode", choices=("dnsrr", "vip"), default="dnsrr")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("error: the Swarm engines need root (scripts/engines.sh)")
        return 1
    started = time.monotonic()
    ours_engines = swarm_up(4, 5)  # a two-node Swarm
    with tempfile.TemporaryDirectory(prefix="bench-swarm-rollout-") as tmp:
        bench = RolloutBench(args, Path(tmp))
        return run_on_extra_engines(bench, bench.run, lambda results: report(results, args), started=started,
                                    stop_engines=swarm_down if ours_engines else None)


if __name__ == "__main__":
    exit_with(main)
