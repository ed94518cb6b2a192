"""Faults for the Ray engine's tests, set up in every Ray worker (``worker_process_setup_hook``).

A file ``crash-N`` in the folder named by BUCKETING_TEST_FAULTS makes write task N's first attempt
die half-way (as a killed worker does: ``os._exit``); ``fail-N`` makes every attempt of task N raise.
"""

from __future__ import annotations

import os
from pathlib import Path


def install() -> None:
    from bucketing import ray_engine
    from bucketing.errors import BucketingError

    control = Path(os.environ["BUCKETING_TEST_FAULTS"])
    copy_lines, skip = ray_engine._copy_lines, ray_engine._skip
    state = {"task": None, "lines": 0}

    def faulty_copy_lines(task):
        if (control / f"fail-{task.number}").exists():
            raise BucketingError(f"injected failure in write task {task.number}")
        state["task"], state["lines"] = task.number, 0
        return copy_lines(task)

    def faulty_skip(source, count):
        crash = control / f"crash-{state['task']}"
        state["lines"] += 1
        if state["lines"] == 3 and crash.exists():
            crash.unlink()  # only the first attempt dies
            os._exit(1)
        return skip(source, count)

    ray_engine._copy_lines, ray_engine._skip = faulty_copy_lines, faulty_skip
