"""One background thread that repeats a step until stopped, sleeping between steps unless woken.

The publisher and the scheduler share this lifecycle: a daemon thread (so a
hung step never keeps the process alive at exit), a stop event, and a wake
event that cuts the sleep short (a commit to publish, a batch submitted).
Subclasses implement `_run_once()`.  An exception escaping it ends the thread
(nothing here catches it): subclasses catch what they can recover from, and
`alive` turns False for /readyz otherwise.
"""

from __future__ import annotations

import threading


class BackgroundLoop:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end after its current step, and wait up to `timeout` seconds for it."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self) -> None:
        """Run the next step now rather than after the current wait."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run_once(self) -> float | None:
        """One step; returns seconds to wait (or until woken) before the next, None to run again at once."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self._run_once()
            if wait is None:
                continue
            self._wake.wait(wait)
            self._wake.clear()
