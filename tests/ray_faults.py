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
    copy_lines, read_ranges = ray_engine._copy_lines, ray_engine.read_ranges
    state = {"task": None}

    def faulty_copy_lines(task):
        if (control / f"fail-{task.number}").exists():
            raise BucketingError(f"injected failure in write task {task.number}")
        state["task"] = task.number
        return copy_lines(task)

    def faulty_read_ranges(*args, **kwargs):
        crash = control / f"crash-{state['task']}"
        for count, piece in enumerate(read_ranges(*args, **kwargs)):
            if count == 3 and crash.exists():  # some lines are in the temp parts by now
                crash.unlink()  # only the first attempt dies
                os._exit(1)
            yield piece

    ray_engine._copy_lines, ray_engine.read_ranges = faulty_copy_lines, faulty_read_ranges
