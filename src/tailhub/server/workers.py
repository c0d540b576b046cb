"""``--workers N``: N hub processes on one port, kept running by this one.

Each worker is a whole hub in its own process, with its own event loop, listening on the same
address with ``SO_REUSEPORT`` (the kernel spreads new connections over them); they agree
through the Redis engine, so ``--workers`` above 1 needs ``--redis`` (settings refuse it
otherwise). This process only supervises:

- a worker that exits is started again, after 0.25 s, doubling up to 10 s while it keeps
  dying within 5 s of its start; a worker that dies that way 5 times in a row stops every
  worker, and the exit status is 1 (it cannot start: the port is taken, Redis refuses, ...);
- SIGTERM or SIGINT stops every worker gracefully (each closes its connections and lets its
  engine finish what it accepted), and kills what is left after 15 s.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Final

import structlog

from tailhub.config import Settings

__all__ = ["supervise"]

_log = structlog.get_logger("tailhub")

_FIRST_DELAY: Final = 0.25
_MAX_DELAY: Final = 10.0
_QUICK_EXIT: Final = 5.0
_GIVE_UP_AFTER: Final = 5
_STOP_TIMEOUT: Final = 15.0

Target = Callable[[Settings, str], int]


class _Slot:
    """One worker position: its current process, and how its recent starts went."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.started = 0.0
        self.quick_exits = 0
        self.start_at = 0.0


def supervise(settings: Settings, token: str, target: Target) -> int:
    """Run ``settings.workers`` processes of ``target(settings, token)`` until SIGTERM/SIGINT.

    ``target`` must be importable by name (the workers are started with ``spawn``).
    Returns the exit status: 0 after a requested stop, 1 when workers cannot stay up.
    """
    context = multiprocessing.get_context("spawn")
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    slots = [_Slot(i) for i in range(settings.workers)]
    status = 0

    def start(slot: _Slot) -> None:
        process = context.Process(
            target=target, args=(settings, token), name=f"tailhub-worker-{slot.index}"
        )
        process.start()
        slot.process = process
        slot.started = time.monotonic()
        _log.info("worker_started", worker=slot.index, pid=process.pid)

    try:
        for slot in slots:
            start(slot)
        _log.info(
            "workers_started",
            workers=settings.workers,
            url=f"ws://{settings.host}:{settings.port}/",
        )
        while not stopping:
            sentinels = [s.process.sentinel for s in slots if s.process is not None]
            multiprocessing.connection.wait(sentinels, timeout=0.2)
            now = time.monotonic()
            for slot in slots:
                process = slot.process
                if process is not None and not process.is_alive():
                    code = process.exitcode
                    process.join()
                    slot.process = None
                    quick = now - slot.started < _QUICK_EXIT
                    slot.quick_exits = slot.quick_exits + 1 if quick else 1
                    if stopping:
                        continue
                    if slot.quick_exits >= _GIVE_UP_AFTER:
                        _log.error(
                            "worker_keeps_failing",
                            worker=slot.index,
                            exit_code=code,
                            hint="every worker stops; see the worker's own lines above",
                        )
                        stopping = True
                        status = 1
                        break
                    delay = min(_FIRST_DELAY * 2 ** (slot.quick_exits - 1), _MAX_DELAY)
                    slot.start_at = now + delay
                    _log.warning(
                        "worker_exited", worker=slot.index, exit_code=code, restart_in=delay
                    )
                if slot.process is None and not stopping and now >= slot.start_at:
                    start(slot)
    finally:
        _stop(slots)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _log.info("workers_stopped")
    return status


def _stop(slots: list[_Slot]) -> None:
    running = [s.process for s in slots if s.process is not None and s.process.is_alive()]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            _log.warning("worker_killed", pid=process.pid)
            process.kill()
            process.join()
