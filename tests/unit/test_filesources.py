"""Configs and secrets in the spec: validation with file:line, the model, hashes, age decryption."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyrage
import pytest

from reconciler.errors import SpecError
from reconciler.hashing import config_hash
from reconciler.spec import load_desired
from reconciler.spec.agecrypt import IDENTITY_ENV, IDENTITY_FILE_ENV
from reconciler.spec.filesources import SourceError, parse_mode
from reconciler.spec.loader import load_stack
from reconciler.spec.validate import validate

PLAINTEXT = "pw-Qx81-unguessable"


def write(directory: Path, text: str) -> Path:
    (directory / "stack.yaml").write_text(text)
    return directory / "stack.yaml"


def problems(directory: Path, text: str, environ: dict | None = None) -> dict[str, tuple[int, str]]:
    raw = load_stack([write(directory, text)], environ=environ or {})
    with pytest.raises(SpecError) as caught:
        validate(raw)
    assert all(p.file == str(directory / "stack.yaml") for p in caught.value.problems)
    return {p.path: (p.line, p.message) for p in caught.value.problems}


def desired(directory: Path, text: str, environ: dict | None = None):
    return load_desired([write(directory, text)], environ=environ or {})


def encrypt_to(path: Path, plaintext: str) -> pyrage.x25519.Identity:
    identity = pyrage.x25519.Identity.generate()
    path.write_bytes(pyrage.encrypt(plaintext.encode(), [identity.to_public()]))
    return identity


def test_mistakes_are_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("listen 80\n")
    (tmp_path / "db.age").write_bytes(b"not age")
    spec = """\
configs:
  app: {file: ./app.conf}
  both: {file: ./app.conf, content: "x"}
  none: {}
  missing: {file: ./nope.conf}
secrets:
  env: {environment: UNSET_VAR}
  enc: {file: ./db.age, encrypted: age}
  inline: {content: "x", encrypted: age}
containers:
  web:
    image: a:1
    configs: [app, ghost, {source: app, target: /etc/a, mode: "0999"}, {source: app, target: /app}]
    secrets: [{source: nope}, {source: env, uid: abc}]
    volumes: ["./data:/run/secrets/env"]
"""
    found = problems(tmp_path, spec)
    assert found == {
        "configs.both": (3, "config 'both': a config takes its content from exactly one of file, content; "
                            "this one sets file, content"),
        "configs.none": (4, "missing required field: 'file' or 'content'"),
        "configs.missing.file": (5, f"config 'missing': file './nope.conf' does not exist ({tmp_path / 'nope.conf'})"),
        "secrets.env.environment": (7, "secret 'env': environment variable UNSET_VAR is not set"),
        "secrets.enc.file": (8, "secret 'enc': cannot decrypt './db.age': it is encrypted with age and no identity "
                                f"is set: set {IDENTITY_ENV} (the identity) or {IDENTITY_FILE_ENV} (a key file)"),
        "secrets.inline.encrypted": (9, "secret 'inline': encrypted applies to a file: put the ciphertext in a "
                                        "file and name it in file"),
        "containers.web.configs[1]": (13, "config 'ghost' is not defined in configs"),
        "containers.web.configs[2].mode": (13, 'mode 0999 is not a file mode: write octal digits such as "0440"'),
        "containers.web.configs[3]": (13, "target /app is already mounted by configs[0]"),
        "containers.web.secrets[0].source": (14, "secret 'nope' is not defined in secrets"),
        "containers.web.secrets[1].uid": (14, "uid 'abc' must be a numeric id, such as 1000"),
    }


def test_a_target_shared_with_a_volume_and_bad_targets(tmp_path: Path) -> None:
    spec = """\
secrets:
  s: {content: x}
containers:
  web:
    image: a:1
    secrets: [s, {source: s, target: ../etc/passwd}, {source: s, target: /etc/}]
    volumes: ["./data:/run/secrets/s"]
"""
    found = problems(tmp_path, spec)
    assert found == {
        "containers.web.secrets[0]": (6, "target /run/secrets/s is already mounted by volumes[0]"),
        "containers.web.secrets[1].target": (6, "target '../etc/passwd' must not contain '..'"),
        "containers.web.secrets[2].target": (6, "target '/etc/' must name a file, not a directory"),
    }


def test_a_secret_file_may_not_leave_the_repository(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x")
    stack = tmp_path / "repo" / "stack"
    stack.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    found = problems(stack, "secrets:\n  s: {file: ../../outside.txt}\n")
    assert list(found) == ["secrets.s.file"] and "outside the repository" in found["secrets.s.file"][1]


def test_a_secret_value_is_not_echoed_by_a_schema_error(tmp_path: Path) -> None:
    found = problems(tmp_path, f"secrets:\n  s: {{content: {PLAINTEXT}, environment: 'bad name'}}\n")
    assert PLAINTEXT not in json.dumps(found)


@pytest.mark.parametrize(("given", "mode"), [("0440", 0o440), ('"0440"', 0o440), ("440", 0o440), ('"600"', 0o600)])
def test_modes_read_as_octal_digits(tmp_path: Path, given: str, mode: int) -> None:
    # YAML 1.2 reads an unquoted 0440 as the decimal 440: the digits are what the user meant.
    state = desired(tmp_path, f"configs:\n  c: {{content: x}}\ncontainers:\n  w:\n    image: a:1\n"
                              f"    configs: [{{source: c, mode: {given}}}]\n")
    assert next(iter(state.containers.values())).files[0].mode == mode


@pytest.mark.parametrize("given", [288, "0o440", "1777", "rw", True, "12345"])
def test_modes_that_are_not_octal_digits_are_refused(given: object) -> None:
    with pytest.raises(SourceError):
        parse_mode(given)


def test_the_model_fills_defaults_and_keeps_content_out_of_every_rendering(tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("listen 80\n")
    state = desired(tmp_path, """\
name: demo
configs:
  app: {file: ./app.conf}
secrets:
  token: {environment: TOKEN}
containers:
  web:
    image: a:1
    configs: [app, {source: app, target: /etc/app.conf, uid: "1000", gid: 1000, mode: "0440"}]
    secrets: [token]
""", environ={"TOKEN": PLAINTEXT})
    web = state.containers["demo-web-1"]
    shown = [(m.kind, m.name, m.target, m.uid, m.gid, oct(m.mode)) for m in web.files]
    assert shown == [("config", "app", "/app", None, None, "0o444"),
                     ("config", "app", "/etc/app.conf", 1000, 1000, "0o440"),
                     ("secret", "token", "/run/secrets/token", None, None, "0o400")]
    assert web.files[2].content.reveal() == PLAINTEXT.encode()
    for rendering in (repr(state), str(web), json.dumps(dataclasses.asdict(web), default=str),
                      json.dumps(web.config()), json.dumps(dict(web.field_hashes))):
        assert PLAINTEXT not in rendering
    assert PLAINTEXT in state.secret_values()
    assert str(tmp_path / "app.conf") in state.inputs  # watch follows the file


def test_a_changed_config_changes_only_the_hashes_of_the_containers_mounting_it(tmp_path: Path) -> None:
    spec = """\
name: demo
configs:
  app: {content: "${APP}"}
  other: {content: same}
containers:
  web: {image: a:1, configs: [app]}
  side: {image: a:1, configs: [other]}
  plain: {image: a:1}
"""
    before = desired(tmp_path, spec, {"APP": "one"}).containers
    after = desired(tmp_path, spec, {"APP": "two"}).containers
    changed = sorted(name for name in before if before[name].config_hash != after[name].config_hash)
    assert changed == ["demo-web-1"]
    fields = dict(after["demo-web-1"].field_hashes)
    assert fields["configs.app"] != dict(before["demo-web-1"].field_hashes)["configs.app"]


def test_a_container_without_configs_or_secrets_keeps_its_hash(tmp_path: Path) -> None:
    plain = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: a:1, env: {A: 1}}\n").containers["demo-web-1"]
    config = plain.config()
    assert config.pop("configs") == {} and config.pop("secrets") == {}
    assert plain.config_hash == config_hash(config)
    assert not any(name.startswith(("configs", "secrets")) for name, _ in plain.field_hashes)


def test_an_age_secret_is_decrypted_with_an_identity_from_the_environment(tmp_path: Path) -> None:
    identity = encrypt_to(tmp_path / "db.age", PLAINTEXT)
    spec = "name: demo\nsecrets:\n  db: {file: ./db.age, encrypted: age}\ncontainers:\n  web: {image: a:1, secrets: [db]}\n"
    state = desired(tmp_path, spec, {IDENTITY_ENV: str(identity)})
    assert state.containers["demo-web-1"].files[0].content.reveal() == PLAINTEXT.encode()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# created: today\n# public key: {identity.to_public()}\n{identity}\n")
    state = desired(tmp_path, spec, {IDENTITY_FILE_ENV: str(key_file)})
    assert state.containers["demo-web-1"].files[0].content.reveal() == PLAINTEXT.encode()


def test_a_wrong_or_broken_identity_names_the_secret_and_its_line(tmp_path: Path) -> None:
    encrypt_to(tmp_path / "db.age", PLAINTEXT)
    other = pyrage.x25519.Identity.generate()
    spec = "secrets:\n  db:\n    file: ./db.age\n    encrypted: age\n"
    wrong = problems(tmp_path, spec, {IDENTITY_ENV: str(other)})
    assert wrong == {"secrets.db.file": (3, f"secret 'db': cannot decrypt './db.age': the identity from "
                                            f"{IDENTITY_ENV} does not open it (it was encrypted to other recipients)")}
    mangled = str(other)[:-3] + "QQQ"
    broken = problems(tmp_path, spec, {IDENTITY_ENV: mangled})
    assert broken["secrets.db.file"][1].endswith(f"{IDENTITY_ENV}, line 1: not an age identity "
                                                 "(expected AGE-SECRET-KEY-1…)")
    assert mangled not in json.dumps(broken)
    unreadable = problems(tmp_path, spec, {IDENTITY_FILE_ENV: str(tmp_path / "no-such-key")})
    assert "cannot read the key file" in unreadable["secrets.db.file"][1]


def test_a_secret_files_content_reaches_the_process_wide_redactor_and_a_configs_does_not(tmp_path: Path) -> None:
    from reconciler.redact import REDACTED, redact

    desired(tmp_path, f"name: demo\nconfigs:\n  c: {{content: plain-config-text}}\nsecrets:\n"
                      f"  s: {{content: \"{PLAINTEXT}\\n\"}}\ncontainers:\n  web: {{image: a:1, configs: [c], secrets: [s]}}\n")
    assert redact(f"read {PLAINTEXT} from plain-config-text") == f"read {REDACTED} from plain-config-text"
