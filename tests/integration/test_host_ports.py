"""A host port held by a container outside the stack: the failed start names the container holding it."""
from __future__ import annotations

from reconciler.labels import STACK as STACK_LABEL

from .conftest import BASE_IMAGE
from .registry import free_port

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    ports: ["127.0.0.1:PORT:80"]
"""


def test_a_port_held_by_a_container_outside_the_stack_names_it_at_apply(stack):
    port = free_port()
    holder_name = f"{stack.name}x-holder"
    engine = stack.engine
    holder = engine.create_container(
        BASE_IMAGE, ["sleep", "3600"], name=holder_name, labels={STACK_LABEL: f"{stack.name}x"},  # the fixture's cleanup
        ports=[80], host_config=engine.create_host_config(init=True, port_bindings={80: ("127.0.0.1", port)}))
    try:
        engine.start(holder["Id"])
        stack.write(SPEC.replace("STACK", stack.name).replace("BASE", BASE_IMAGE).replace("PORT", str(port)))
        result = stack.apply()
        assert result.code != 0, result.out
        text = result.out + result.err
        assert f"127.0.0.1:{port}" in text and "already in use" in text, text
        assert f"held by container {holder_name} of stack {stack.name}x" in text, text
    finally:
        engine.remove_container(holder["Id"], force=True)
