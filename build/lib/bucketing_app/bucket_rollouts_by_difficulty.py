#!/usr/bin/env python3
"""Bucket JSONL rollouts by difficulty: the original script's command, now `python -m bucketing`."""

import sys

from bucketing.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="bucket_rollouts_by_difficulty.py"))
