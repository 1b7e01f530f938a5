"""The JSON Schema of the stack spec, shipped as package data (reconciler.schemas)."""
