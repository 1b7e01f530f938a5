"""Changed fields read as values, never JSON: mounts, ports, networks, healthcheck, labels, env (secrets redacted)."""
from __future__ import annotations

from reconciler import labels
from reconciler.explain import display, item_text, render_change, render_field
from reconciler.model import EnvVar, HealthCheck, Mount, Port
from reconciler.plan import REDACTED, FieldChange
from reconciler.planner import plan_changes
from reconciler.render import plan_text
from reconciler.spec.containerspecs import with_container_hashes

from .builders import container as bare_container
from .builders import live, live_container, state


def container(**kw):
    """A container whose hashes cover every field, as the spec loader makes them."""
    return with_container_hashes(bare_container(**kw))


def _fields(web, old, details):
    plan = plan_changes(state(web), live(live_container(old, details=details)))
    (change,) = plan.changes
    return change, render_change(change.fields)


def test_mounts_show_the_items_added_and_removed() -> None:
    kept = Mount("volume", "/var/lib/db", source="demo_db")
    web = container(mounts=[kept, Mount("bind", "/data", source="/srv/data", read_only=True)])
    old = container(mounts=[kept, Mount("bind", "/old", source="/old")])
    change, lines = _fields(web, old, {"mounts": (Mount("bind", "/old", source="/old"), kept)})
    assert lines == ["mounts: + /srv/data:/data (ro)", "mounts: - /old:/old"]
    assert "{" not in plan_text(plan_changes(state(web), live(live_container(old, details={"mounts": old.mounts}))))


def test_ports_read_as_host_published_arrow_target() -> None:
    web = container(ports=[Port(80, 8080, host_ip="127.0.0.1")])
    old = container(ports=[Port(80, 8081)])
    _, lines = _fields(web, old, {"ports": old.ports})
    assert lines == ["ports: + 127.0.0.1:8080→80/tcp", "ports: - 8081→80/tcp"]
    assert item_text(Port(53, protocol="udp")) == "53/udp"
    assert item_text(Port(80, 80, host_ip="::1")) == "[::1]:80→80/tcp"


def test_a_healthcheck_reads_as_its_command_and_timing() -> None:
    check = HealthCheck(("CMD-SHELL", "curl -f localhost"), interval_ns=30_000_000_000, timeout_ns=5_000_000_000,
                        retries=3)
    web, old = container(healthcheck=check), container(healthcheck=HealthCheck(("CMD", "true")))
    _, lines = _fields(web, old, {"healthcheck": old.healthcheck})
    assert lines == ["healthcheck: true → curl -f localhost (every 30s, timeout 5s, 3 retries)"]
    assert item_text(HealthCheck(("NONE",))) == "none"


def test_labels_and_env_show_per_key_and_secrets_stay_redacted() -> None:
    web = container(labels=[("tier", "front")], env=[EnvVar("TOKEN", "s3cr3t-new", secret=True), EnvVar("A", "2")])
    old = container(labels=[("tier", "back")], env=[EnvVar("TOKEN", "s3cr3t-old", secret=True), EnvVar("A", "1")])
    change, lines = _fields(web, old, {"labels": {"tier": "back"}, "env": {"TOKEN": "s3cr3t-old", "A": "1"}})
    assert sorted(lines) == sorted(['labels.tier: "back" → "front"', 'env.A: "1" → "2"',
                                    f"env.TOKEN: {REDACTED} → {REDACTED}"])
    assert "s3cr3t" not in repr(change)
    assert item_text(EnvVar("TOKEN", "s3cr3t", secret=True)) == f"TOKEN={REDACTED}"


def test_networks_rewired_by_hand_show_items_and_keep_their_text() -> None:
    web = container()
    current = live(live_container(web, details={"networks": ["elsewhere"], "default_network": "bridge"}))
    (change,) = plan_changes(state(web), current).changes
    assert str(change.fields[0]) == 'networks: ["elsewhere"] → ["bridge"]'
    assert render_change(change.fields) == ["networks: + bridge", "networks: - elsewhere"]


def test_render_field_of_a_scalar_a_field_only_set_on_one_side_and_an_unknown_one() -> None:
    assert render_field(FieldChange("user", '"1000"', '"0"')) == ['user: "1000" → "0"']
    assert render_field(FieldChange("user", None, '"0"')) == ['user: + "0"']
    assert render_field(FieldChange("user", '"0"', None)) == ['user: - "0"']
    assert render_field(FieldChange("networks")) == ["networks: changed"]
    assert display((Mount("tmpfs", "/tmp", tmpfs_size=1024),)) == "[tmpfs:/tmp (size 1024)]"
