"""The store's SQLite write lock: mutual exclusion, urgent waiters first, arrival order
within each kind, one waiter woken per release."""

from __future__ import annotations

import threading
import time

from enforcer.store.base import PriorityLock


def _waiting(lock: PriorityLock, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(lock._urgent) + len(lock._normal) < n:
        assert time.monotonic() < deadline, "waiters never queued"
        time.sleep(0.001)


def test_urgent_waiters_go_first_then_arrival_order() -> None:
    lock = PriorityLock()
    order: list[str] = []
    threads = []
    with lock.hold():
        for i, (name, urgent) in enumerate([("n1", False), ("u1", True), ("n2", False),
                                             ("u2", True)]):
            def take(name: str = name, urgent: bool = urgent) -> None:
                with lock.hold(urgent=urgent):
                    order.append(name)
            t = threading.Thread(target=take)
            t.start()
            threads.append(t)
            _waiting(lock, i + 1)  # queue them in this order
    for t in threads:
        t.join(5)
    assert order == ["u1", "u2", "n1", "n2"]
    assert not lock._held  # free again once the queue is empty


def test_mutual_exclusion_under_contention() -> None:
    lock = PriorityLock()
    inside = 0
    peak = 0
    done = 0
    guard = threading.Lock()

    def worker(urgent: bool) -> None:
        nonlocal inside, peak, done
        for _ in range(200):
            with lock.hold(urgent=urgent):
                with guard:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0)
                with guard:
                    inside -= 1
                    done += 1

    threads = [threading.Thread(target=worker, args=(i % 3 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert peak == 1 and done == 8 * 200


def test_release_on_error_hands_over() -> None:
    lock = PriorityLock()
    try:
        with lock.hold():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    got = threading.Event()

    def take() -> None:
        with lock.hold():
            got.set()

    t = threading.Thread(target=take)
    t.start()
    assert got.wait(5)
    t.join(5)
    assert not lock._held
