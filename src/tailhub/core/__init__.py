"""The hub's core: local fan-out, and the node: one process's policy in front of the engine."""
