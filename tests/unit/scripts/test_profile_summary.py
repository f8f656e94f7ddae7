"""The profile summary leaves out samples in an event loop's own driver and counts the rest."""

from __future__ import annotations

from scripts.profile_summary import in_loop_driver, parse, shares

FOLDED = [
    "main (agents/__main__.py:13);Worker.execute_from_commandline (mode/worker.py:264) 30",
    "main (agents/__main__.py:13);Worker.execute_from_commandline (mode/worker.py:264);"
    "track (agents/tracking/tracker.py:10) 5",
    "_bootstrap (threading.py:1);ServiceThread._start_thread (mode/threads.py:1) 20",
    "_bootstrap (threading.py:1);ServiceThread._start_thread (mode/threads.py:1);"
    "_proc_fetch_request (/x/site-packages/aiokafka/consumer/fetcher.py:744) 3",
]


def test_samples_in_a_loop_driver_are_told_apart() -> None:
    stacks = parse(FOLDED)
    driver = [count for frames, count in stacks if in_loop_driver(frames)]
    assert driver == [30, 20]


def test_shares_count_the_work_under_the_drivers() -> None:
    work = [(frames, count) for frames, count in parse(FOLDED) if not in_loop_driver(frames)]
    packages, modules, selves = shares(work)
    assert packages["agents"] == 5
    assert packages["aiokafka"] == 3
    assert modules["agents/tracking/tracker.py"] == 5
    assert selves["track (agents/tracking/tracker.py)"] == 5
