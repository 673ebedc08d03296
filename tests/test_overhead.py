"""The worker's time outside training is given to its trials, each second once."""

import time

from scalelab.search import overhead


def test_the_clock_counts_from_process_start_and_restarts_when_a_trial_is_written():
    assert overhead.since_last_trial() > 0  # at least this test process's start-up, before any trial
    overhead.trial_written()
    first = overhead.since_last_trial()
    time.sleep(0.05)
    assert overhead.since_last_trial() >= first + 0.04
    overhead.trial_written()
    assert overhead.since_last_trial() < 0.04


def test_process_start_is_in_the_past():
    assert overhead._process_start() <= time.perf_counter()
