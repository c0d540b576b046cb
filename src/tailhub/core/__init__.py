"""The hub's core: sessions, local fan-out, and the node that joins them to store and broker."""
