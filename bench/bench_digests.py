#!/usr/bin/env python3
"""Benchmark the upstream digest checks of a no-op ``plan`` against a floor of bare HEADs.

    python bench/bench_digests.py [--images 20] [--repeats 7]

Starts a real password-protected registry on 127.0.0.1 (``tests/integration/registry.py``),
pushes N tags of the base image to it (``bench/dNN:1``), then, alternating, N times:

  ours   the docker registry driver's ``observe`` of those N refs, in process, with a
         fresh driver each run (one image list call + the manifest HEADs);
  floor  the same N ``HEAD /v2/<name>/manifests/1`` requests with Basic auth, made
         concurrently by a minimal ``http.client`` thread pool.

Prints the medians, the ratio ours / floor (target <= 1.3) and the requests the
checks made (must be <= 1 HEAD per image + 1 auth round trip per registry).
Nothing is asserted: the exit code is 1 only when something failed. The registry
and every tag pushed are removed at the end, also on error.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

import docker  # noqa: E402

import tests.integration.conftest  # noqa: E402,F401  pylint: disable=unused-import  (first: registry.py imports its constants)
from tests.integration.conftest import BASE_IMAGE  # noqa: E402
from tests.integration.registry import Registry  # noqa: E402

from reconciler.drivers import DriverContext  # noqa: E402
from reconciler.model import ImageSpec  # noqa: E402
from reconciler_docker import images as images_module  # noqa: E402
from reconciler_docker.distribution import ManifestChecker  # noqa: E402
from reconciler_docker.registryhttp import ACCEPT  # noqa: E402

TARGET = 1.3


class CountingChecker(ManifestChecker):
    """The driver's checker, remembered so the bench can read its request count."""

    made: list[ManifestChecker] = []

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        CountingChecker.made.append(self)


def push_all(engine: docker.APIClient, server: Registry, n: int) -> list[str]:
    refs = [f"{server.host}/bench/d{i:02d}:1" for i in range(n)]

    def push(ref: str) -> None:
        repo = ref.rpartition(":")[0]
        engine.tag(BASE_IMAGE, repo, tag="1")
        for event in engine.push(repo, tag="1", auth_config=server.auth_config, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push {ref}: {event['error']}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(push, refs))
    return refs


def floor(server: Registry, refs: list[str]) -> float:
    header = "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()

    def head(ref: str) -> str:
        name = ref.split("/", 1)[1].rpartition(":")[0]
        conn = http.client.HTTPConnection(server.host, timeout=10)
        try:
            conn.request("HEAD", f"/v2/{name}/manifests/1", headers={"Accept": ACCEPT, "Authorization": header})
            response = conn.getresponse()
            response.read()
            return response.headers["Docker-Content-Digest"]
        finally:
            conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        digests = list(pool.map(head, refs))
    elapsed = time.perf_counter() - start
    assert all(d.startswith("sha256:") for d in digests)
    return elapsed


def ours(refs: list[str]) -> tuple[float, int]:
    driver = images_module.DockerRegistryDriver(DriverContext(stack="bench"))
    driver.api.ping()  # connecting to the engine is not part of the checks
    CountingChecker.made.clear()
    start = time.perf_counter()
    found = driver.observe("bench", {ref: ImageSpec(key=f"i{n}", ref=ref) for n, ref in enumerate(refs)})
    elapsed = time.perf_counter() - start
    upstream = [o.content.source if o.content else "" for o in found]
    if len(found) != len(refs) or not all(upstream):
        errors = {o.name: o.details.get("upstream_error") for o in found if o.content is None}
        raise RuntimeError(f"observe found {len(found)}/{len(refs)} images; failed checks: {errors}")
    return elapsed, sum(c.requests for c in CountingChecker.made)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    engine = docker.from_env(version="auto").api
    server = Registry().start()
    auth = Path(tempfile.mkdtemp(prefix="bench-digests-")) / "auth.yaml"
    auth.write_text(f'registries:\n  "{server.host}": {{username: {server.username}, password_env: BENCH_REG_PW}}\n')
    os.environ.update(RECONCILER_REGISTRY_AUTH=str(auth), BENCH_REG_PW=server.password)
    images_module.ManifestChecker = CountingChecker
    refs: list[str] = []
    try:
        refs = push_all(engine, server, args.images)
        ours(refs), floor(server, refs)  # warm-up: imports, first connections
        mine, base, counts = [], [], []
        for i in range(args.repeats):
            if i % 2:
                base.append(floor(server, refs))
            t, n = ours(refs)
            mine.append(t)
            counts.append(n)
            if not i % 2:
                base.append(floor(server, refs))
        ratio = statistics.median(mine) / statistics.median(base)
        print(f"{args.images} registry images, {args.repeats} runs each (medians)")
        print(f"  ours  (driver observe: image list + checks) {statistics.median(mine) * 1000:7.1f} ms"
              f"   runs: {', '.join(f'{t * 1000:.1f}' for t in mine)}")
        print(f"  floor ({args.images} concurrent HEADs, http.client)     {statistics.median(base) * 1000:7.1f} ms"
              f"   runs: {', '.join(f'{t * 1000:.1f}' for t in base)}")
        print(f"  ratio ours/floor {ratio:.2f} (target <= {TARGET}) {'ok' if ratio <= TARGET else 'OVER'}")
        print(f"  registry requests per check: {sorted(set(counts))} (limit {args.images} HEADs + 1 auth round trip"
              f" = {args.images + 1}) {'ok' if max(counts) <= args.images + 1 else 'OVER'}")
        return 0
    except Exception as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for ref in refs:
            try:
                engine.remove_image(ref)
            except docker.errors.APIError:
                pass
        server.close()
        auth.unlink(missing_ok=True)
        auth.parent.rmdir()


if __name__ == "__main__":
    sys.exit(main())
