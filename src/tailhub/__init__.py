"""tailhub: a real-time hub for watching and steering fleets of agent containers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
