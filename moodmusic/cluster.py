"""The chain spread over a Ray cluster: long jobs (a loop bank, the closed-loop evaluation) as Ray tasks.

    moodmusic bank --grid 5x5 --seconds 30 --out bank/ --ray              # a Ray cluster started on this machine
    moodmusic bank --grid 5x5 --seconds 30 --out bank/ --ray 10.0.0.5:6379  # an existing cluster
    moodmusic evaluate --ray                                               # the closed loop's clips on the cluster

A long job hands its work to its chain as `chain.map(fn, items)` (`moodmusic.pipeline.Pipeline.map`: one after another
in this process). `ClusterChain.map` runs each `fn(chain, item)` as a task on a `ChainWorker` actor (the whole chain,
loaded once per actor, one CPU each) and yields the results in the items' order as they finish, so the job's own
progress bar (tqdm) moves as the cluster works. A task whose actor died goes again to another (`fn` must make the
same result from the same item: a clip is a function of its mood, seconds and seed), so the job loses nothing.

What a job asks of the chain directly (its `versions`; the stages themselves, as the closed loop's realism section
does) is answered here: the stages are loaded in this process the first time one is asked for. Needs the `scale`
extra (ray); the chain's other forms never import this module.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import Any, Callable, Iterable, Iterator

import ray

from moodmusic.pipeline import Pipeline, load_pipeline

log = logging.getLogger("moodmusic.cluster")
RETRIES = 3  # tries of one item, its first included, before the job fails
IN_FLIGHT = 2  # tasks per worker at once: the one running and the next, so a worker never idles between two


@ray.remote(num_cpus=1, max_restarts=-1)
class ChainWorker:
    """One replica of the whole chain (generator, vocoder, classifier, narrator) on one core."""

    def __init__(self, checkpoints: str | None, vocoder: str | None, candidates: int | None):
        import torch

        torch.set_num_threads(1)
        self.pipeline = load_pipeline(checkpoints, vocoder=vocoder, candidates=candidates)

    def versions(self) -> dict[str, str]:
        return self.pipeline.versions

    def apply(self, fn: Callable[[Pipeline, Any], Any], item: Any) -> Any:
        return fn(self.pipeline, item)


class LocalStages:
    """For a chain whose work runs elsewhere: its stages in this process too (`generator`, `vocoder`, `classifier`,
    `narrator`), loaded by `load_local` the first time one is asked for."""

    _local: Pipeline | None = None
    _local_lock = threading.Lock()

    def load_local(self) -> Pipeline:
        raise NotImplementedError

    def local(self) -> Pipeline:
        with self._local_lock:
            if self._local is None:
                log.info("loading the stages in this process (a job asked for them)")
                self._local = self.load_local()
            return self._local

    generator = property(lambda self: self.local().generator)
    vocoder = property(lambda self: self.local().vocoder)
    classifier = property(lambda self: self.local().classifier)
    narrator = property(lambda self: self.local().narrator)


class ClusterChain(LocalStages):
    """A chain whose `map` runs on `ChainWorker` actors; `start` joins (or starts) the cluster and makes them."""

    def __init__(self, workers: list, checkpoints: str | None = None, vocoder: str | None = None, candidates: int | None = None):
        self.workers, self.checkpoints, self.vocoder_choice, self.candidates = workers, checkpoints, vocoder, candidates
        self.versions = ray.get(workers[0].versions.remote())

    @classmethod
    def start(cls, address: str | None = None, checkpoints: str | None = None, workers: int | None = None,
              vocoder: str | None = None, candidates: int | None = None) -> ClusterChain:  # fmt: skip
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})  # fmt: skip
        count = workers or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))
        return cls([ChainWorker.remote(checkpoints, vocoder, candidates) for _ in range(count)], checkpoints, vocoder, candidates)

    def map(self, fn: Callable[[Pipeline, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """`fn(chain, item)` for each item on the workers, the results in the items' order (see the module docstring)."""
        items = list(items)
        waiting: deque[int] = deque(range(len(items)))
        running: dict[Any, tuple[int, Any]] = {}  # object ref -> (item index, worker)
        tries = [0] * len(items)
        finished: dict[int, Any] = {}
        load = {id(worker): 0 for worker in self.workers}

        def dispatch() -> None:
            while waiting:
                worker = min(self.workers, key=lambda w: load[id(w)])
                if load[id(worker)] >= IN_FLIGHT:
                    return
                index = waiting.popleft()
                tries[index] += 1
                running[worker.apply.remote(fn, items[index])] = (index, worker)
                load[id(worker)] += 1

        following = 0
        dispatch()
        while following < len(items):
            if following in finished:
                yield finished.pop(following)
                following += 1
                continue
            (ready,), _ = ray.wait(list(running), num_returns=1)
            index, worker = running.pop(ready)
            load[id(worker)] -= 1
            try:
                finished[index] = ray.get(ready)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                if tries[index] >= RETRIES:
                    raise
                log.warning("the worker of item %d died; sending it again", index)
                waiting.appendleft(index)
            dispatch()

    def load_local(self) -> Pipeline:
        return load_pipeline(self.checkpoints, vocoder=self.vocoder_choice, candidates=self.candidates)

    def close(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
