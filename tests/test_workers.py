"""The inference pool's order: expected finish first, learnt per kind of job; nothing starves."""

import threading
import time

from moodmusic.server.workers import WorkerPool


def teach(pool: WorkerPool, kind: str, seconds: float, units: float = 1.0) -> None:
    pool.submit(lambda: time.sleep(seconds), kind, units).result(timeout=5)


def test_a_short_job_goes_ahead_of_a_long_one_queued_just_before_it():
    pool = WorkerPool(workers=1, queue_size=8)
    try:
        teach(pool, "clip", 0.20, units=10)  # 0.02 s per second of audio
        teach(pool, "analyze", 0.02, units=1)
        assert abs(pool.expected_seconds("clip", 10) - 0.2) < 0.05 and pool.expected_seconds("analyze", 1) < 0.05
        gate, order = threading.Event(), []
        blocker = pool.submit(gate.wait, "clip", 0.0)  # holds the only worker
        long = pool.submit(lambda: order.append("clip"), "clip", 10)
        short = pool.submit(lambda: order.append("analyze"), "analyze", 1)
        gate.set()
        for future in (blocker, long, short):
            future.result(timeout=5)
        assert order == ["analyze", "clip"]
    finally:
        pool.close(timeout=5)


def test_an_old_long_job_is_not_overtaken_forever():
    pool = WorkerPool(workers=1, queue_size=8)
    try:
        teach(pool, "clip", 0.05, units=1)
        teach(pool, "analyze", 0.0, units=1)
        gate, order = threading.Event(), []
        blocker = pool.submit(gate.wait, "analyze", 0.0)
        long = pool.submit(lambda: order.append("clip"), "clip", 1)
        time.sleep(0.2)  # longer than the clip's expected 0.05 s: anything submitted now comes after it
        short = pool.submit(lambda: order.append("analyze"), "analyze", 1)
        gate.set()
        for future in (blocker, long, short):
            future.result(timeout=5)
        assert order == ["clip", "analyze"]
    finally:
        pool.close(timeout=5)


def test_close_finishes_every_accepted_job_before_stopping():
    pool = WorkerPool(workers=1, queue_size=8)
    gate, done = threading.Event(), []
    first = pool.submit(gate.wait)
    rest = [pool.submit(lambda i=i: done.append(i), "later", 100.0) for i in range(3)]  # expected late, still run
    closer = threading.Thread(target=pool.close)
    closer.start()
    gate.set()
    closer.join(timeout=5)
    assert first.done() and all(f.done() for f in rest) and sorted(done) == [0, 1, 2]


def test_torch_threads_come_from_the_environment_and_the_command_line():
    import argparse

    import pytest

    from moodmusic.server.cli import add_arguments
    from moodmusic.server.settings import Settings, SettingsError

    assert Settings().torch_threads == 0  # the cores divided among the workers (server/services.py)
    assert Settings.from_env({"MOODMUSIC_TORCH_THREADS": "2"}).torch_threads == 2
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert Settings.from_env({"MOODMUSIC_TORCH_THREADS": "2"}).with_args(parser.parse_args(["--torch-threads", "1"])).torch_threads == 1
    with pytest.raises(SettingsError, match="torch_threads"):
        Settings(torch_threads=-1)
    with pytest.raises(SettingsError, match="MOODMUSIC_TORCH_THREADS"):
        Settings.from_env({"MOODMUSIC_TORCH_THREADS": "many"})


def test_one_client_cannot_hold_more_than_its_share_and_a_finished_job_frees_it():
    from moodmusic.server.workers import TooManyJobs

    pool = WorkerPool(workers=1, queue_size=8, per_client=2)
    try:
        gate = threading.Event()
        held = [pool.submit(gate.wait, client="key:a") for _ in range(2)]
        try:
            pool.submit(gate.wait, client="key:a")
            raise AssertionError("a third job of the same client was accepted")
        except TooManyJobs as refused:
            assert refused.status_code == 429 and refused.retry_after >= 1 and "2 jobs" in str(refused)
        other = pool.submit(gate.wait, client="key:b")  # another client still gets a place
        assert pool.jobs_of("key:a") == 2 and pool.jobs_of("key:b") == 1
        gate.set()
        for future in (*held, other):
            future.result(timeout=5)
        time.sleep(0.05)
        assert pool.jobs_of("key:a") == 0
        pool.submit(lambda: None, client="key:a").result(timeout=5)
    finally:
        pool.close(timeout=5)


def test_a_job_cancelled_in_the_queue_gives_its_client_place_back():
    pool = WorkerPool(workers=1, queue_size=8, per_client=1)
    try:
        gate = threading.Event()
        blocker = pool.submit(gate.wait)
        queued = pool.submit(lambda: None, client="address:1.2.3.4")
        assert queued.cancel() and pool.jobs_of("address:1.2.3.4") == 0
        pool.submit(lambda: None, client="address:1.2.3.4")
        gate.set()
        blocker.result(timeout=5)
    finally:
        pool.close(timeout=5)
