"""A stack's spec made into a preview: its name, its host ports, and nothing writable shared with the main stack.

Real spec files are loaded as the daemon loads a branch's (``load_desired(..., stack=preview_name(...))``),
then made previews; no engine.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.model import DesiredState, PreviewRules
from reconciler.names import MAX_STACK_NAME, stack_name_problem
from reconciler.previews import (
    Adapted, PortsExhausted, allocate_ports, port_keys, preview_name, preview_of, preview_urls,
)
from reconciler.spec import load_desired
from reconciler.spec.containerspecs import with_container_hashes

RULES = PreviewRules(branches=("feature/*",))
BRANCH = "feature/login"

STACK = """
name: shop
images:
  app:
    build: {context: ./app}
    ref: registry.example/shop/app:main
    push: true
networks:
  front: {name: shop-front}
  back:
    ipam: {subnet: 10.77.0.0/24}
  proxy: {external: true, name: traefik}
volumes:
  data: {name: shop-data}
  uploads: {external: true, name: shop-uploads}
  assets: {external: true, name: shop-assets}
  unused: {external: true, name: shop-unused}
  files:
    options: {type: cifs, device: //nas/files, o: "username=shop,password=hunter2"}
containers:
  web:
    image: app
    container_name: shop-web
    ports: ["8080:80", "127.0.0.1:9090:90", "53:53/udp", "5000"]
    networks:
      front: {aliases: [www]}
      proxy: {}
    volumes:
      - data:/data
      - uploads:/uploads
      - {type: volume, source: assets, target: /assets, read_only: true}
      - /srv/shared:/shared
      - /srv/config:/config:ro
      - ./static:/static
    env:
      TOKEN: {value: s3cret, secret: true}
    memory: 1g
    cpus: 0.25
  db:
    image: postgres:16
    pid: "container:shop-web"
    networks:
      back: {ipv4_address: 10.77.0.5}
    volumes: [data:/var/lib/postgresql/data, files:/files]
    memory: 64m
    depends_on:
      web: {condition: started}
  worker:
    image: busybox:1
    network_mode: none
"""


def write_stack(tmp_path: Path, text: str = STACK, name: str = "stack.yaml") -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1\n")
    (tmp_path / "static").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_pair(tmp_path: Path, text: str = STACK, *, name: str = "stack.yaml",
              branch: str = BRANCH) -> tuple[DesiredState, DesiredState]:
    """The main stack's desired state, and the branch's loaded under its preview name (as the daemon does)."""
    spec = write_stack(tmp_path, text, name)
    main = load_desired([spec])
    return main, load_desired([spec], stack=preview_name(main.stack, branch))


def adapt(tmp_path: Path, rules: PreviewRules = RULES, *, taken: frozenset[int] = frozenset(),
          tree: Path | None | str = "tmp") -> tuple[DesiredState, Adapted]:
    main, preview = load_pair(tmp_path)
    ports = allocate_ports(port_keys(preview), {}, taken, rules)
    return main, preview_of(preview, rules, ports, tree=tmp_path if tree == "tmp" else tree)


def by_key(desired: DesiredState, key: str):
    return next(spec for spec in desired.containers.values() if spec.key == key)


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack, branch, expected", [
    ("shop", "feature/Login_Page!", "shop-feature-login_page"),
    ("shop", "fix--it", "shop-fix--it"),
    ("shop", "_Ünïcode branch_", "shop-n-code-branch"),
    ("my_app", "v1.2.3", "my_app-v1-2-3"),
])
def test_a_branch_becomes_a_valid_stack_name(stack, branch, expected):
    assert preview_name(stack, branch) == expected
    assert stack_name_problem(expected) is None


def test_a_long_branch_is_cut_and_hashed_within_the_limit():
    long = "feature/" + "very-long-topic-" * 8
    name = preview_name("shop", long)
    assert len(name) <= MAX_STACK_NAME and stack_name_problem(name) is None
    assert name.startswith("shop-feature-very-long-topic-")
    other = preview_name("shop", long + "2")  # the same 56 first characters, another branch
    assert other != name and other[:-7] == name[:-7]
    assert preview_name("shop", long) == name  # deterministic


def test_a_long_stack_and_a_branch_of_nothing_still_give_valid_names():
    stack = "s" * MAX_STACK_NAME
    for branch in ("main", "///", "-_-"):
        name = preview_name(stack, branch)
        assert stack_name_problem(name) is None and name.startswith("s")
    assert preview_name("shop", "///") != preview_name("shop", "!!!")  # the hash covers the branch as written


def test_a_taken_name_gets_the_hash_and_the_same_one_each_time():
    plain = preview_name("shop", "feature/a")
    first = preview_name("shop", "feature/a", taken={plain})
    assert first != plain and first.startswith("shop-feature-a-") and len(first) == len(plain) + 7
    assert preview_name("shop", "feature/a", taken={plain, "other"}) == first
    # "feature-a" and "feature/a" clash on their plain name; each keeps its own hashed one
    assert preview_name("shop", "feature-a", taken={plain}) != first


def test_every_derived_name_of_a_loaded_preview_is_the_previews(tmp_path):
    main, preview = load_pair(tmp_path)
    stack = preview.stack
    assert stack == "shop-feature-login" and main.stack == "shop"
    assert by_key(preview, "worker").name == f"{stack}-worker-1"
    assert preview.networks["back"].name == f"{stack}_back"
    assert preview.images["app"].ref == "registry.example/shop/app:main"  # given: preview_of's to change


# -- ports ----------------------------------------------------------------------------------------------


def test_port_keys_are_the_published_ports_sorted_each_once(tmp_path):
    _, preview = load_pair(tmp_path)
    assert port_keys(preview) == ["web-1:53/udp", "web-1:80/tcp", "web-1:90/tcp"]


def test_ports_are_allocated_around_taken_ones_and_kept_across_passes():
    keys = ["web-1:80/tcp", "api-1:8080/tcp"]
    first = allocate_ports(keys, {}, {30000, 30002}, RULES)
    assert first == {"api-1:8080/tcp": 30001, "web-1:80/tcp": 30003}
    # the next pass: one key more, and 30001 now taken by someone else too; kept ports stay
    second = allocate_ports([*keys, "db-1:5432/tcp"], first, {30000, 30001, 30002, 30004}, RULES)
    assert second == {**first, "db-1:5432/tcp": 30005}
    # exactly the keys asked for: a port no longer published is let go
    assert allocate_ports(["web-1:80/tcp"], second, set(), RULES) == {"web-1:80/tcp": 30003}
    assert allocate_ports([], second, set(), RULES) == {}


def test_a_full_range_is_an_error_naming_it_and_the_count():
    rules = replace(RULES, port_range=(40000, 40002))
    with pytest.raises(PortsExhausted) as caught:
        allocate_ports(["a-1:1/tcp", "b-1:1/tcp", "c-1:1/tcp"], {"a-1:1/tcp": 40000}, {40001}, rules)
    assert isinstance(caught.value, SpecError)
    assert "40000-40002" in str(caught.value) and "needs 2 more" in str(caught.value)
    assert (caught.value.needed, caught.value.free) == (2, 1)


def test_remapped_ports_keep_address_and_protocol(tmp_path):
    _, adapted = adapt(tmp_path, taken=frozenset({30000}))
    web = by_key(adapted.desired, "web")
    assert [(p.target, p.published, p.protocol, p.host_ip) for p in web.ports] == [
        (80, 30002, "tcp", ""), (90, 30003, "tcp", "127.0.0.1"), (53, 30001, "udp", ""), (5000, None, "tcp", "")]
    assert f"container {web.name}: 80/tcp published on host port 30002, not 8080" in adapted.notes


def test_drop_mode_publishes_no_host_port(tmp_path):
    rules = replace(RULES, ports="drop")
    _, adapted = adapt(tmp_path, rules)
    web = by_key(adapted.desired, "web")
    assert [(p.target, p.published) for p in web.ports] == [(5000, None)]
    assert preview_urls(adapted.desired, rules, "engine") == ()
    assert sum("not published" in note for note in adapted.notes) == 3


# -- volumes and networks -----------------------------------------------------------------------------


def test_an_external_volume_mounted_writable_becomes_the_previews_own(tmp_path):
    _, adapted = adapt(tmp_path)
    stack = adapted.desired.stack
    uploads = adapted.desired.volumes["uploads"]
    assert (uploads.name, uploads.external, uploads.driver) == (f"{stack}_uploads", False, "local")
    assert uploads.config_hash
    mount = next(m for m in by_key(adapted.desired, "web").mounts if m.target == "/uploads")
    assert mount.source == f"{stack}_uploads" and not mount.read_only
    assert any(n.startswith("volume uploads: the external volume shop-uploads is mounted writable")
               for n in adapted.notes)


def test_an_external_volume_mounted_read_only_is_shared_and_an_unused_one_untouched(tmp_path):
    main, adapted = adapt(tmp_path)
    assert adapted.desired.volumes["assets"] == main.volumes["assets"]
    assert adapted.desired.volumes["unused"] == main.volumes["unused"]
    mount = next(m for m in by_key(adapted.desired, "web").mounts if m.target == "/assets")
    assert (mount.source, mount.read_only) == ("shop-assets", True)
    assert "volume assets: the external volume shop-assets is shared, read-only" in adapted.notes
    assert not any("unused" in note for note in adapted.notes)


def test_named_volume_and_network_are_renamed_and_followed(tmp_path):
    main, adapted = adapt(tmp_path)
    desired, stack = adapted.desired, adapted.desired.stack
    assert desired.volumes["data"].name == f"{stack}_data"
    assert desired.volumes["data"].config_hash == main.volumes["data"].config_hash  # the name is not config
    assert {m.source for c in desired.containers.values() for m in c.mounts if m.volume_key == "data"} == {
        f"{stack}_data"}
    assert desired.networks["front"].name == f"{stack}_front"
    assert desired.networks["proxy"] == main.networks["proxy"]  # external: joined as the main stack joins it
    web = by_key(desired, "web")
    assert dict(web.networks) == {f"{stack}_front": ("shop-web", "web", "www"), "traefik": ("web",)}
    assert f"network front: named {stack}_front (its name shop-front is the main stack's)" in adapted.notes


def test_a_volume_whose_options_may_name_outside_storage_becomes_a_plain_one(tmp_path):
    main, adapted = adapt(tmp_path)
    files = adapted.desired.volumes["files"]
    assert main.volumes["files"].options and main.volumes["files"].name == "shop_files"
    assert (files.name, files.driver, files.options) == (f"{adapted.desired.stack}_files", "local", ())
    assert files.config_hash != main.volumes["files"].config_hash
    note = next(n for n in adapted.notes if n.startswith("volume files"))
    assert "(device, o, type)" in note and "hunter2" not in note and "//nas" not in note


def test_a_container_on_the_host_network_is_told_to_share_its_ports(tmp_path):
    text = "name: tool\ncontainers:\n  agent: {image: busybox:1, network_mode: host}\n"
    _, preview = load_pair(tmp_path, text)
    adapted = preview_of(preview, RULES, {}, tree=tmp_path)
    assert adapted.notes == (f"container {preview.stack}-agent-1: on the host's network (network_mode: host), it "
                             f"listens on the same ports as the main stack's",)


def test_a_fixed_subnet_is_left_to_the_pools_and_static_addresses_on_it_dropped(tmp_path):
    main, adapted = adapt(tmp_path)
    back = adapted.desired.networks["back"]
    assert main.networks["back"].subnet == "10.77.0.0/24"
    assert (back.subnet, back.gateway, back.ip_range) == (None, None, None)
    assert back.config_hash != main.networks["back"].config_hash
    db = by_key(adapted.desired, "db")
    assert db.addresses == () and dict(db.networks) == {back.name: ("db",)}
    assert any(note.startswith("network back: its fixed subnet 10.77.0.0/24") for note in adapted.notes)


# -- containers -----------------------------------------------------------------------------------------


def test_a_container_name_becomes_the_derived_one_and_stays_an_alias(tmp_path):
    main, adapted = adapt(tmp_path)
    stack = adapted.desired.stack
    web = by_key(adapted.desired, "web")
    assert by_key(main, "web").name == "shop-web"
    assert web.name == f"{stack}-web-1" and web.replica == 1
    assert web.name in adapted.desired.containers and "shop-web" not in adapted.desired.containers
    assert by_key(adapted.desired, "db").pid == f"container:{stack}-web-1"  # not the main stack's process
    assert (f"container web: named {stack}-web-1 (its container_name shop-web is the main stack's); shop-web "
            f"stays its alias on {stack}_front") in adapted.notes


def test_a_service_of_a_scheduling_runtime_keeps_its_name(tmp_path):
    _, preview = load_pair(tmp_path)
    worker = by_key(preview, "worker")
    service = replace(worker, name=f"{preview.stack}_worker", replica=0, replicas=3)
    preview = replace(preview, containers={**{k: v for k, v in preview.containers.items() if v.key != "worker"},
                                           service.name: service})
    adapted = preview_of(preview, RULES, allocate_ports(port_keys(preview), {}, (), RULES), tree=tmp_path)
    assert by_key(adapted.desired, "worker").name == f"{preview.stack}_worker"
    assert not any(note.startswith("container worker") for note in adapted.notes)


def test_a_host_bind_is_made_read_only_and_a_bind_inside_the_tree_left_alone(tmp_path):
    _, adapted = adapt(tmp_path)
    web = by_key(adapted.desired, "web")
    mounts = {m.target: m for m in web.mounts}
    assert mounts["/shared"].read_only and mounts["/config"].read_only
    assert not mounts["/static"].read_only and mounts["/static"].source == str(tmp_path / "static")
    binds = [note for note in adapted.notes if "host path" in note]
    assert binds == [f"container {web.name}: the host path /srv/shared on /shared is mounted read-only "
                     f"(the main stack's is the same path)"]


def test_without_a_tree_every_bind_is_read_only(tmp_path):
    _, adapted = adapt(tmp_path, tree=None)
    assert all(m.read_only for m in by_key(adapted.desired, "web").mounts if m.type == "bind")


def test_limits_are_capped_by_the_rules(tmp_path):
    rules = replace(RULES, memory=256 * 2**20, nano_cpus=500_000_000)
    _, adapted = adapt(tmp_path, rules)
    web, db, worker = (by_key(adapted.desired, key) for key in ("web", "db", "worker"))
    assert (web.memory, db.memory, worker.memory) == (256 * 2**20, 64 * 2**20, 256 * 2**20)
    assert (web.nano_cpus, db.nano_cpus, worker.nano_cpus) == (250_000_000, 500_000_000, 500_000_000)
    assert f"memory capped at 256.0 MiB: {web.name}, {worker.name}" in adapted.notes
    assert f"CPUs capped at 0.5: {db.name}, {worker.name}" in adapted.notes
    _, uncapped = adapt(tmp_path)
    assert by_key(uncapped.desired, "worker").memory is None


def test_a_built_image_given_a_ref_is_built_under_the_previews_tag_and_never_pushed(tmp_path):
    main, adapted = adapt(tmp_path)
    app = adapted.desired.images["app"]
    assert (app.ref, app.push, app.ref_at) == (f"{adapted.desired.stack}-app:latest", False, None)
    assert app.build_hash == main.images["app"].build_hash
    assert by_key(adapted.desired, "web").image_ref == app.ref
    assert by_key(adapted.desired, "db").image_ref == "postgres:16"


def test_secrets_and_everything_else_stay_as_they_are(tmp_path):
    _, preview = load_pair(tmp_path)
    _, adapted = adapt(tmp_path)
    web, before = by_key(adapted.desired, "web"), by_key(preview, "web")
    assert web.env == before.env and web.secret_env == {"TOKEN"}
    assert "s3cret" not in " ".join(adapted.notes)
    db = by_key(adapted.desired, "db")
    assert db.depends_on == (("web", "started"),) and db.healthcheck == by_key(preview, "db").healthcheck


# -- hashes --------------------------------------------------------------------------------------------


def test_every_hash_is_recomputed_differs_where_config_does_and_is_stable(tmp_path):
    main, preview = load_pair(tmp_path)
    ports = allocate_ports(port_keys(preview), {}, (), RULES)
    first = preview_of(preview, RULES, ports, tree=tmp_path)
    again = preview_of(preview, RULES, dict(ports), tree=tmp_path)
    assert first == again
    for name, spec in first.desired.containers.items():
        assert spec.config_hash == with_container_hashes(spec).config_hash == again.desired.containers[name].config_hash
    assert by_key(first.desired, "web").config_hash != by_key(main, "web").config_hash
    # a container on no network, publishing nothing, mounting nothing: the same config as the main stack's
    assert by_key(first.desired, "worker").config_hash == by_key(main, "worker").config_hash
    assert first.desired.networks["front"].config_hash == main.networks["front"].config_hash


# -- URLs ----------------------------------------------------------------------------------------------


def test_urls_name_the_rules_host_the_ports_address_or_the_engines(tmp_path):
    _, adapted = adapt(tmp_path)
    assert preview_urls(adapted.desired, RULES, "docker.lan") == (
        "http://127.0.0.1:30002/", "http://docker.lan:30001/")
    hosted = replace(RULES, host="previews.example")
    assert preview_urls(adapted.desired, hosted, "docker.lan") == (
        "http://previews.example:30001/", "http://previews.example:30002/")


def test_ipv6_hosts_are_bracketed_and_any_address_means_the_engines(tmp_path):
    _, preview = load_pair(tmp_path)
    web = by_key(preview, "web")
    ports = tuple(replace(p, host_ip=ip, published=31000 + i)
                  for i, (p, ip) in enumerate(zip(web.ports[:2], ("::1", "::"))))
    desired = replace(preview, containers={web.name: replace(web, ports=ports)})
    assert preview_urls(desired, RULES, "fd00::1") == ("http://[::1]:31000/", "http://[fd00::1]:31001/")


# -- Compose --------------------------------------------------------------------------------------------

COMPOSE = """
services:
  web:
    image: nginx:1
    container_name: storefront
    ports: ["8080:80"]
    volumes: [data:/data]
volumes:
  data: {name: storefront-data}
"""


def test_a_compose_project_becomes_a_preview(tmp_path):
    main, preview = load_pair(tmp_path, COMPOSE, name="compose.yaml", branch="feature/Cart")
    assert preview.stack == f"{main.stack}-feature-cart"
    keys = port_keys(preview)
    assert keys == ["web-1:80/tcp"]
    adapted = preview_of(preview, RULES, allocate_ports(keys, {}, (), RULES), tree=tmp_path)
    web = by_key(adapted.desired, "web")
    assert web.name == f"{preview.stack}-web-1"
    assert all("storefront" in aliases for _, aliases in web.networks)
    assert [(p.target, p.published) for p in web.ports] == [(80, 30000)]
    assert adapted.desired.volumes["data"].name == f"{preview.stack}_data"
    assert [m.source for m in web.mounts] == [f"{preview.stack}_data"]
    assert preview_urls(adapted.desired, RULES, "localhost") == ("http://localhost:30000/",)
