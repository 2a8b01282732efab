"""Long jobs as Ray tasks: a chain whose clips are made by replicas spread over a Ray cluster.

    moodmusic bank --grid 5x5 --seconds 30 --out bank/ --ray              # a Ray cluster started on this machine
    moodmusic bank --grid 5x5 --seconds 30 --out bank/ --ray 10.0.0.5:6379  # an existing cluster

`ClusterChain` answers what a long job asks of a `moodmusic.pipeline.Pipeline` (`versions`, `compose_many`): each
clip is one task on a `ClipMaker` actor (the whole chain, loaded once per actor, one CPU each); the clips come back in
the order they were asked for, as they finish, so the job's own progress bar (tqdm) moves as the cluster works. A
`ClipMaker` that dies takes its task with it; the task is sent again to another maker (the clip is a function of
its arguments), so no clip of the job is lost.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Iterable, Iterator

import ray

from moodmusic.pipeline import Clip, load_pipeline

log = logging.getLogger("moodmusic.server.ray")
RETRIES = 3


@ray.remote(num_cpus=1, max_restarts=-1)
class ClipMaker:
    """One replica of the whole chain (generator, vocoder, classifier, narrator) on one core."""

    def __init__(self, checkpoints: str | None):
        import torch

        torch.set_num_threads(1)
        self.pipeline = load_pipeline(checkpoints)

    def versions(self) -> dict[str, str]:
        return self.pipeline.versions

    def compose(self, args: tuple, kwargs: dict[str, Any]) -> Clip:
        return self.pipeline.compose(*args, **kwargs)


class ClusterChain:
    """A chain whose `compose_many` runs on `workers` ClipMaker actors. `start` joins (or starts) the cluster."""

    def __init__(self, makers: list):
        self.makers = makers
        self.versions = ray.get(makers[0].versions.remote())

    @classmethod
    def start(cls, address: str | None = None, checkpoints: str | None = None, workers: int | None = None) -> ClusterChain:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})  # fmt: skip
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))
        return cls([ClipMaker.remote(checkpoints) for _ in range(workers)])

    def compose_many(self, calls: Iterable[tuple[tuple, dict[str, Any]]]) -> Iterator[Clip]:
        """The clips of `calls`, in their order. Each maker has one task at a time (plus the next one queued, so it
        never idles between two); a task whose maker died goes again, to whichever maker is free next."""
        calls = list(calls)
        queued: deque[int] = deque(range(len(calls)))
        running: dict[Any, tuple[int, Any, int]] = {}  # object ref -> (index, maker, attempt)
        attempts = [0] * len(calls)
        done: dict[int, Clip] = {}
        load = {id(maker): 0 for maker in self.makers}

        def dispatch() -> None:
            while queued:
                maker = min(self.makers, key=lambda m: load[id(m)])
                if load[id(maker)] >= 2:
                    return
                index = queued.popleft()
                attempts[index] += 1
                ref = maker.compose.remote(*calls[index])
                running[ref] = (index, maker)
                load[id(maker)] += 1

        following = 0
        dispatch()
        while following < len(calls):
            while following in done:
                yield done.pop(following)
                following += 1
            if following >= len(calls):
                return
            ready, _ = ray.wait(list(running), num_returns=1)
            index, maker = running.pop(ready[0])
            load[id(maker)] -= 1
            try:
                done[index] = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                if attempts[index] >= RETRIES:
                    raise
                log.warning("the maker of clip %d died; sending it again", index)
                queued.appendleft(index)
            dispatch()

    def close(self) -> None:
        for maker in self.makers:
            ray.kill(maker)
