"""`Batcher`: one worker thread runs the model; requests that arrive together are answered in one batch.

Requests wait in a bounded queue (full: the caller answers 429 with Retry-After).
The worker takes the oldest request, gathers the others already waiting (up to
`max_batch`, waiting at most `wait_s` for more) for the same model and settings, and
runs them as one batch: one `predict` for a task version (batched label scoring or
generation), one batched `generate` for the base model.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable


class QueueFull(Exception):
    """More requests are waiting than the server will hold."""


@dataclass
class Job:
    key: tuple  # requests with the same key can share a batch
    payload: object
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self, run_batch: Callable[[tuple, list], list], max_queue: int = 64, max_batch: int = 8, wait_s: float = 0.03):
        self.run_batch = run_batch
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches = 0
        self.batched_requests = 0
        self._held: list[Job] = []  # taken from the queue but belonging to another key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="adaptlab-batcher", daemon=True)
        self._thread.start()

    def submit(self, key: tuple, payload) -> Future:
        job = Job(key, payload)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next(self, timeout: float) -> Job | None:
        if self._held:
            return self._held.pop(0)
        try:
            return self.jobs.get(timeout=timeout)
        except queue.Empty:
            return None

    def _work(self) -> None:
        while not (self._stop.is_set() and self.jobs.empty() and not self._held):
            first = self._next(0.1)
            if first is None:
                continue
            batch, deadline = [first], time.perf_counter() + self.wait_s
            while len(batch) < self.max_batch:
                job = self._next(max(0.0, deadline - time.perf_counter()))
                if job is None:
                    break
                (batch if job.key == first.key else self._held).append(job)
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not live:
                continue
            self.batches += 1
            self.batched_requests += len(live)
            try:
                results = self.run_batch(first.key, [job.payload for job in live])
                for job, result in zip(live, results):
                    if isinstance(result, BaseException):  # this request's own failure
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)
            except BaseException as exc:  # every waiting request learns of it; the worker goes on
                for job in live:
                    job.future.set_exception(exc)
