"""`Batcher`: one worker thread runs the model; requests for the same model that arrive together share a batch.

Requests wait in one lane per key (a model and its settings). The worker always serves
the lane whose oldest request has waited longest, gathering up to `max_batch` of that
lane's requests (waiting at most `wait_s` after the oldest arrived), and runs them as
one batch. A batch that decodes step by step (serve/worker.py) lets more of its lane's
requests join while it runs (`Running.admit`, up to `max_batch` at once) and answers each
as soon as it ends (`Running.answer`): a request that arrives while its lane runs starts at
the next step instead of waiting for the whole batch. It admits only while no other lane's
head has waited longer, so no request can wait behind another lane forever: every batch
goes to the lane with the longest-waiting head, and a lane's head only gets older.

    >>> import time
    >>> b = Batcher(lambda key, payloads: [f"{key[0]}:{p}" for p in payloads])
    >>> [f.result(timeout=5) for f in (b.submit(("a",), 1), b.submit(("b",), 2))]
    ['a:1', 'b:2']
    >>> b.close()

Admission is bounded twice: by the number waiting (`max_queue`) and by the time the
queue already holds (`max_wait_s`: each lane's batches so far, timed, give how long its
waiting requests will take). Beyond either, `QueueFull`, which the server answers with
429 and Retry-After: a request is refused at once rather than accepted and left
waiting past any client's patience. `stalled` is the watchdog behind /ready: work is
waiting or running and the worker has not moved for a while.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field


class QueueFull(Exception):
    """More requests are waiting, or more work is queued, than the server will hold."""

    def __init__(self, retry_after: int = 1):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    key: tuple  # requests with the same key can share a batch
    payload: object
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class Running(Sequence):
    """A lane's batch while it runs, as its run function sees it: a sequence of the payloads so far, more of the lane's
    requests admitted while it runs (`admit`), and each answer handed over as soon as it is ready (`answer`)."""

    def __init__(self, batcher: Batcher, key: tuple, jobs: list[Job]):
        self.batcher, self.key, self.jobs = batcher, key, jobs
        self.max_rows = batcher.max_batch  # requests running together, at most

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int):  # type: ignore[override]  # by index only: run functions never slice a batch
        return self.jobs[i].payload

    def admit(self, room: int) -> range:
        """Take up to `room` more of the lane's waiting requests (none while another lane's head waited longer);
        the indices of their payloads."""
        start = len(self.jobs)
        self.jobs += self.batcher._admit(self.key, room)
        return range(start, len(self.jobs))

    def answer(self, i: int, result) -> None:
        """Hand request `i` its answer now (an exception: its own failure); later answers for it are ignored."""
        job = self.jobs[i]
        if job.future.done():
            return
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)
        self.batcher._running -= 1


class Batcher:
    """Lanes of waiting requests and the one worker thread that runs them: `run_batch(key, batch)` answers a lane's
    batch (a `Running`) with one result per payload, in order; an exception it raises fails every request of it."""

    def __init__(
        self,
        run_batch: Callable[[tuple, Sequence], list],
        max_queue: int = 64,
        max_batch: int = 8,
        wait_s: float = 0.03,
        max_wait_s: float | None = None,
    ):
        self.run_batch = run_batch
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self._batch_s: dict[tuple, float] = {}  # per lane: a batch's seconds, a moving average of the ones run
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches = 0
        self.batched_requests = 0
        self._lanes: dict[tuple, deque[Job]] = {}
        self._waiting = 0
        self._running = 0
        self._moved_at = time.monotonic()  # the watchdog's clock: the last time the worker showed progress
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="adaptlab-batcher", daemon=True)
        self._thread.start()

    def submit(self, key: tuple, payload) -> Future:
        """Queue one request; its future gets the answer (or the request's own exception)."""
        job = Job(key, payload)
        with self._cond:
            if self._waiting >= self.max_queue:
                raise QueueFull(max(1, round(self._queued_seconds())))
            if self.max_wait_s is not None and (ahead := self._queued_seconds(key)) > self.max_wait_s:
                raise QueueFull(max(1, round(ahead - self.max_wait_s)))
            self._lanes.setdefault(key, deque()).append(job)
            self._waiting += 1
            self._cond.notify()
        return job.future

    def drop(self, future: Future) -> bool:
        """Take a request that is still queued out of its lane (its client went away); False if it already runs or
        ran."""
        with self._cond:
            for key, lane in self._lanes.items():
                for job in lane:
                    if job.future is future:
                        lane.remove(job)
                        self._waiting -= 1
                        if not lane:
                            del self._lanes[key]
                        future.cancel()
                        return True
        return False

    def _queued_seconds(self, joining: tuple | None = None) -> float:
        """How long the waiting work takes, from each lane's batch times so far; with `joining`, the work ahead of
        one more request for that lane (the batches before the one it would join). An empty queue: 0, always
        admitted."""
        total = 0.0
        for key, lane in self._lanes.items():
            batches = len(lane) // self.max_batch if key == joining else math.ceil(len(lane) / self.max_batch)
            total += batches * self._batch_s.get(key, 0.0)
        return total

    def beat(self) -> None:
        """The running batch made progress (a token, a scored query): the watchdog's heartbeat."""
        self._moved_at = time.monotonic()

    def stalled(self, after_s: float) -> bool:
        """Work is waiting or running, and the worker has shown no progress for `after_s` seconds (or has died)."""
        with self._cond:
            busy = self._waiting > 0 or self._running > 0
        if busy and not self._thread.is_alive():
            return True
        return busy and time.monotonic() - self._moved_at > after_s

    @property
    def waiting(self) -> int:
        return self._waiting

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _take(self) -> list[Job] | None:
        """The next batch: up to max_batch jobs of the lane whose head has waited longest; None when stopping."""
        with self._cond:
            while not self._lanes:
                if self._stop:
                    return None
                self._moved_at = time.monotonic()  # idle is not stalled
                self._cond.wait(0.5)
            key = min(self._lanes, key=lambda k: self._lanes[k][0].queued_at)
            lane = self._lanes[key]
            deadline = lane[0].queued_at + self.wait_s  # more of this lane may be arriving together
            while len(lane) < self.max_batch and not self._stop and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
                if key not in self._lanes:  # every job in it was dropped while we waited
                    return []
                lane = self._lanes[key]
            batch = [lane.popleft() for _ in range(min(self.max_batch, len(lane)))]
            if not lane:
                del self._lanes[key]
            self._waiting -= len(batch)
            self._running = len(batch)
            self._moved_at = time.monotonic()
            return batch

    def _admit(self, key: tuple, room: int) -> list[Job]:
        """Up to `room` of lane `key`'s waiting jobs for its running batch, unless another lane's head waited longer."""
        with self._cond:
            lane = self._lanes.get(key)
            if (
                room <= 0
                or not lane
                or any(k != key and other[0].queued_at < lane[0].queued_at for k, other in self._lanes.items())
            ):
                return []
            taken = [lane.popleft() for _ in range(min(room, len(lane)))]
            if not lane:
                del self._lanes[key]
            self._waiting -= len(taken)
        jobs = [job for job in taken if job.future.set_running_or_notify_cancel()]
        self._running += len(jobs)
        self.batched_requests += len(jobs)
        return jobs

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if live:
                self._run(Running(self, live[0].key, live))
            with self._cond:
                self._running = 0
                self._moved_at = time.monotonic()

    def _run(self, running: Running) -> None:
        """Run one batch; every request in it gets an answer or an exception, whatever run_batch does."""
        self.batches += 1
        self.batched_requests += len(running)
        self._running = len(running)
        clock = time.monotonic()
        try:
            results = self.run_batch(running.key, running)
            for i, result in zip(range(len(running)), results):
                running.answer(i, result)
            for i in range(
                len(results), len(running)
            ):  # a run_batch that answered too few must not leave a request hanging
                running.answer(i, RuntimeError("the batch returned no answer for this request"))
        except BaseException as exc:  # every request of the batch learns of it; the worker goes on
            for job in running.jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
        # A batch's seconds, per max_batch requests when more joined it: the admission estimate of queued work.
        seconds, key = (time.monotonic() - clock) * self.max_batch / max(len(running), self.max_batch), running.key
        self._batch_s[key] = seconds if key not in self._batch_s else 0.7 * self._batch_s[key] + 0.3 * seconds
