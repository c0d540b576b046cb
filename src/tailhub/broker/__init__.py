"""Brokers carry routed messages between hub processes: the interface and implementations."""

from tailhub.broker.base import Broker, BrokerHandler
from tailhub.broker.memory import MemoryBroker

__all__ = ["Broker", "BrokerHandler", "MemoryBroker"]
