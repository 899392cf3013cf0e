#!/usr/bin/python3
"""Unit tests of tests/faults/checker.py on hand-made histories: linearizable ones and not, with
unknown outcomes, BADVERSION observations, lost and phantom set elements, zxids that go back, and
the write-unavailability windows attributed to each fault.
Prints TAP; exits non-zero when a test fails. Run: /usr/bin/python3 tests/faults/test_checker.py
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

INIT = ("", 0)


def op(process, f, value, status, start, end, result=None):
    return {"process": process, "f": f, "value": value, "status": status, "start": start,
            "end": end, "result": result}


def w(p, v, s, e, status="ok"):
    return op(p, "write", v, status, s, e)


def r(p, v, ver, s, e):
    return op(p, "read", None, "ok", s, e, [v, ver])


def cas(p, expected, v, s, e, status="ok"):
    return op(p, "cas", [expected, v], status, s, e, "badversion" if status == "fail" else None)


def valid(ops):
    return checker.check_register(ops, INIT)["valid"]


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def a_read_after_a_completed_write_sees_it():
    assert valid([w(1, "a", 0, 10), r(2, "a", 1, 20, 30)]) is True


@test
def a_read_that_begins_after_a_write_completed_and_sees_the_old_value_is_not_linearizable():
    res = checker.check_register([w(1, "a", 0, 10), r(2, "", 0, 20, 30)], INIT)
    assert res["valid"] is False, res
    assert res["stuck_at"] is not None


@test
def a_read_concurrent_with_a_write_may_see_either_value():
    assert valid([w(1, "a", 0, 100), r(2, "", 0, 10, 20)]) is True
    assert valid([w(1, "a", 0, 100), r(2, "a", 1, 10, 20)]) is True


@test
def reads_that_see_two_concurrent_writes_in_opposite_orders_are_not_linearizable():
    ops = [w(1, "a", 0, 100), w(2, "b", 0, 100),
           r(3, "a", 2, 110, 120), r(3, "b", 2, 130, 140)]
    assert valid(ops) is False
    ops_ok = [w(1, "a", 0, 100), w(2, "b", 0, 100),
              r(3, "a", 2, 110, 120), r(4, "a", 2, 130, 140)]
    assert valid(ops_ok) is True


@test
def a_read_of_a_value_nobody_wrote_is_not_linearizable():
    assert valid([w(1, "a", 0, 10), r(2, "z", 1, 20, 30)]) is False


@test
def an_unknown_write_may_have_happened():
    ops = [w(1, "a", 0, 10, status="unknown"), r(2, "a", 1, 50, 60)]
    assert valid(ops) is True


@test
def an_unknown_write_may_not_have_happened():
    ops = [w(1, "a", 0, 10, status="unknown"), r(2, "", 0, 50, 60), w(3, "b", 70, 80),
           r(2, "b", 1, 90, 100)]
    assert valid(ops) is True


@test
def an_unknown_write_takes_effect_at_most_once_and_never_before_its_invocation():
    # seen, then overwritten, then seen again: it cannot have happened twice
    ops = [w(1, "a", 0, 10, status="unknown"), r(2, "a", 1, 20, 30), w(3, "b", 40, 50),
           r(2, "a", 3, 60, 70)]
    assert valid(ops) is False
    # seen before it was invoked
    assert valid([r(2, "a", 1, 0, 10), w(1, "a", 20, 30, status="unknown")]) is False


@test
def an_unknown_write_that_lands_late_is_fine_but_versions_never_go_back():
    ops = [w(1, "a", 0, 10), w(2, "b", 20, 30, status="unknown"),
           r(3, "a", 1, 40, 50), r(3, "b", 2, 60, 70)]
    assert valid(ops) is True
    ops_back = [w(1, "a", 0, 10), w(2, "b", 20, 30, status="unknown"),
                r(3, "b", 2, 40, 50), r(3, "a", 1, 60, 70)]
    assert valid(ops_back) is False


@test
def a_failed_write_never_happened_and_a_read_that_sees_it_is_flagged():
    ops = [w(1, "a", 0, 10, status="fail"), r(2, "a", 1, 20, 30)]
    assert valid(ops) is False


@test
def a_conditional_write_succeeds_only_at_the_expected_version():
    assert valid([w(1, "a", 0, 10), cas(2, 1, "b", 20, 30), r(3, "b", 2, 40, 50)]) is True
    assert valid([w(1, "a", 0, 10), cas(2, 0, "b", 20, 30)]) is False


@test
def badversion_is_an_observation_that_the_version_differed():
    assert valid([w(1, "a", 0, 10), cas(2, 0, "b", 20, 30, status="fail")]) is True
    # nothing else ran: the version was 1, so BADVERSION for expected 1 is impossible
    assert valid([w(1, "a", 0, 10), cas(2, 1, "b", 20, 30, status="fail")]) is False
    # a concurrent write explains it
    assert valid([w(1, "a", 0, 10), w(3, "c", 15, 40), cas(2, 1, "b", 20, 30, status="fail")]) is True


@test
def an_unknown_conditional_write_either_applied_at_its_version_or_not_at_all():
    assert valid([cas(1, 0, "a", 0, 10, status="unknown"), r(2, "a", 1, 20, 30)]) is True
    assert valid([w(3, "x", 0, 5), cas(1, 0, "a", 10, 20, status="unknown"),
                  r(2, "a", 2, 30, 40)]) is False


@test
def a_long_concurrent_valid_history_is_decided_quickly():
    rng = random.Random(7)
    ops = []
    state = INIT
    clock = 0
    # Simulate 4 clients against an atomic register; each op's interval covers its atomic point.
    for i in range(600):
        clock += rng.randint(1, 5)
        p = rng.randrange(4)
        # a few unknown outcomes (the runner moves to a fresh register after 8); half of them
        # never took effect
        kind = "unknown" if len([o for o in ops if o["status"] == "unknown"]) < 8 and rng.random() < 0.03 else rng.choice(["read", "write", "cas"])
        s, e = clock - rng.randint(0, 20), clock + rng.randint(0, 20)
        if kind == "read":
            ops.append(r(p, state[0], state[1], s, e))
        elif kind == "write":
            state = ("v%d" % i, state[1] + 1)
            ops.append(w(p, state[0], s, e))
        elif kind == "cas":
            expected = state[1] if rng.random() < 0.7 else state[1] + 1
            if expected == state[1]:
                state = ("v%d" % i, state[1] + 1)
                ops.append(cas(p, expected, state[0], s, e))
            else:
                ops.append(cas(p, expected, "v%d" % i, s, e, status="fail"))
        elif rng.random() < 0.5:
            state = ("v%d" % i, state[1] + 1)
            ops.append(w(p, state[0], s, e, status="unknown"))
        else:
            ops.append(w(p, "lost%d" % i, s, e, status="unknown"))
    res = checker.check_register(ops, INIT)
    assert res["valid"] is True, res
    # and one stale read planted in the middle is found
    bad = list(ops)
    bad.insert(300, r(9, "v0", 1, clock * 2, clock * 2 + 1))
    res = checker.check_register(bad, INIT)
    assert res["valid"] is False, res


@test
def a_search_over_budget_is_reported_undecided_never_valid():
    ops = [w(p, "u%d" % p, 0, 10, status="unknown") for p in range(30)]
    # 32 versions from 30 writes is impossible, but only an exhaustive search can tell
    ops.append(r(99, "u0", 32, 100, 105))
    res = checker.check_register(ops, INIT, max_steps=2000)
    assert res["valid"] is None and "budget" in res["reason"], res


@test
def the_set_checker_finds_lost_and_phantom_creates():
    creates = [{"name": "e-1-0", "status": "ok", "start": 0, "end": 10},
               {"name": "e-1-1", "status": "unknown", "start": 20, "end": 30},
               {"name": "e-2-0", "status": "ok", "start": 5, "end": 15}]
    reads = [{"status": "ok", "start": 40, "end": 50, "result": ["e-1-0", "e-2-0"]}]
    assert checker.check_set(creates, reads, {1: ["e-1-0", "e-2-0", "e-1-1"], 2: ["e-1-0", "e-2-0"]}) == []
    lost = checker.check_set(creates, reads, {1: ["e-1-0"]})
    assert len(lost) == 1 and "lost 1" in lost[0], lost
    stale = checker.check_set(creates, [{"status": "ok", "start": 40, "end": 50, "result": ["e-1-0"]}], {})
    assert len(stale) == 1 and "e-2-0" in stale[0], stale
    phantom = checker.check_set(creates, reads, {3: ["e-1-0", "e-2-0", "e-9-9"]})
    assert len(phantom) == 1 and "nobody created" in phantom[0], phantom
    # a read that began before the ack may miss it
    early = [{"status": "ok", "start": 12, "end": 50, "result": ["e-1-0"]}]
    assert checker.check_set(creates, early, {}) == []


@test
def the_monotonic_checker_flags_a_reply_older_than_one_already_seen():
    ops = [{"process": 1, "session": 5, "status": "ok", "zxid": z, "start": i}
           for i, z in enumerate([3, 4, 4, 9])]
    assert checker.check_monotonic(ops) == []
    ops.append({"process": 1, "session": 5, "status": "ok", "zxid": 7, "start": 10})
    assert len(checker.check_monotonic(ops)) == 1
    # a new session starts its own sequence
    ops2 = [{"process": 1, "session": 5, "status": "ok", "zxid": 9, "start": 0},
            {"process": 1, "session": 6, "status": "ok", "zxid": 2, "start": 1}]
    assert checker.check_monotonic(ops2) == []


S = 1_000_000_000  # ns in a second: the window tests write times in seconds


def wop(process, start, end, status="ok"):
    return {"process": process, "status": status, "start": int(start * S), "end": int(end * S)}


def steady(process, t0, t1, step=0.1, dur=0.01):
    """A client's back-to-back successful writes from t0 to t1 (seconds)."""
    ops, t = [], t0
    while t + dur <= t1:
        ops.append(wop(process, t, t + dur))
        t += step
    return ops


def fault(kind, start):
    return {"kind": kind, "start": int(start * S)}


def secs(ns):
    return round(ns / S, 3)


@test
def a_leader_kill_window_runs_from_the_first_stalled_write_to_the_first_success_after_it():
    # two clients write every 100 ms; the fault at 10.005 s; both stall until 13.5 s
    ops = steady("a", 0, 10.0) + steady("b", 0.05, 10.0)
    ops.append(wop("a", 10.0, 13.5))                 # in flight at the kill, acknowledged late
    ops.append(wop("b", 10.05, 12.0, "unknown"))     # connection lost at 12 s
    ops.append(wop("b", 12.1, 13.6))                 # retried, acknowledged after the election
    ops += steady("a", 13.6, 20.0) + steady("b", 13.7, 20.0)
    per_fault, baseline = checker.unavailability_windows(ops, [fault("kill-leader", 10.005)], 20 * S)
    w = per_fault[0]
    # last success before: b's write ending at 9.96; a's write started at 10.0 is the first stalled one
    assert secs(w["window"]) == 3.5, w
    assert secs(w["gap"]) == round(13.5 - 9.96, 3), w
    assert secs(w["start"]) == 10.0 and secs(w["end"]) == 13.5 and w["open"] is False, w
    # per client: b's own successes 9.96 -> 13.6
    assert w["worst_client"] == "b" and secs(w["worst_client_gap"]) == round(13.6 - 9.96, 3), w
    assert secs(baseline["window"]) < 0.2, baseline


@test
def a_write_in_flight_when_the_last_success_landed_starts_the_window_there():
    ops = [wop("a", 0, 1), wop("b", 0.5, 9), wop("a", 1.2, 1.3), wop("a", 1.4, 9.5)]
    per_fault, _ = checker.unavailability_windows(ops, [fault("pause-leader", 2)], 10 * S)
    # b's write was in flight at 1.3 (the last success) and stalled: the window starts at 1.3
    assert secs(per_fault[0]["window"]) == round(9 - 1.3, 3), per_fault[0]
    assert secs(per_fault[0]["gap"]) == round(9 - 1.3, 3), per_fault[0]


@test
def a_pause_in_the_load_is_not_a_window_but_its_first_stalled_write_starts_one():
    # nobody wrote between 1 s and 5 s: the window is the stalled write from 5 s to 6 s only
    ops = [wop("a", 0.9, 1.0), wop("a", 5.0, 6.0), wop("a", 6.0, 6.01)]
    per_fault, _ = checker.unavailability_windows(ops, [fault("kill-follower", 3)], 7 * S)
    assert secs(per_fault[0]["window"]) == 1.0, per_fault[0]
    assert secs(per_fault[0]["gap"]) == 5.0, per_fault[0]
    # an interval in which nothing was attempted until the write that succeeded: its latency
    idle = [wop("a", 0.9, 1.0), wop("a", 5.0, 5.01)]
    per_fault, _ = checker.unavailability_windows(idle, [fault("kill-follower", 3)], 7 * S)
    assert secs(per_fault[0]["window"]) == 0.01 and secs(per_fault[0]["gap"]) == round(5.01 - 1.0, 3)
    # and the quiet end of a run, with nothing in flight, is no window at all
    per_fault, _ = checker.unavailability_windows(idle[:1], [fault("kill-follower", 3)], 7 * S)
    assert per_fault[0]["window"] == 0 and per_fault[0]["open"] is True, per_fault[0]


@test
def a_fault_that_other_clients_ride_through_has_a_small_window_and_a_large_client_gap():
    # a follower dies: client b (on it) reconnects for 2 s, client a keeps writing
    ops = steady("a", 0, 20) + steady("b", 0, 10) + [wop("b", 10.0, 12.0, "unknown")] + steady("b", 12.05, 20)
    per_fault, _ = checker.unavailability_windows(ops, [fault("kill-follower", 10.02)], 20 * S)
    w = per_fault[0]
    assert secs(w["window"]) <= 0.1, w
    assert w["worst_client"] == "b" and 2.0 <= secs(w["worst_client_gap"]) <= 2.2, w


@test
def an_outage_at_the_heal_belongs_to_the_fault_and_the_next_fault_gets_its_own():
    # kill at 5 (1 s outage); the killed leader restarts at 10 and stalls writes 11..15;
    # a second fault at 20 with a 0.5 s outage
    ops = steady("a", 0, 5) + [wop("a", 5.0, 6.0)] + steady("a", 6.0, 11.0) + \
        [wop("a", 11.0, 15.0)] + steady("a", 15.0, 20.0) + [wop("a", 20.0, 20.5)] + steady("a", 20.5, 30)
    faults = [fault("kill-leader", 5.001), fault("kill-follower", 20.001)]
    per_fault, _ = checker.unavailability_windows(ops, faults, 30 * S)
    assert secs(per_fault[0]["window"]) == 4.0 and secs(per_fault[0]["start"]) == 11.0, per_fault[0]
    assert secs(per_fault[1]["window"]) == 0.5, per_fault[1]


@test
def an_outage_that_never_ends_is_open_and_runs_to_the_end_of_the_run():
    ops = steady("a", 0, 5) + [wop("a", 5.0, 10.0, "unknown"), wop("a", 10.1, 15.1, "unknown")]
    per_fault, _ = checker.unavailability_windows(ops, [fault("partition-isolate-leader", 5.001)], 16 * S)
    w = per_fault[0]
    assert w["open"] is True and secs(w["window"]) == 11.0 and secs(w["end"]) == 16.0, w
    # an outage spanning two injections counts once, for the first fault
    per_fault, _ = checker.unavailability_windows(
        ops, [fault("pause-leader", 5.001), fault("kill-follower", 12)], 16 * S)
    assert secs(per_fault[0]["window"]) == 11.0 and per_fault[1]["window"] == 0, per_fault


@test
def window_distributions_and_bounds():
    d = checker.distribution([5, 1, 4, 2, 3, 10, 6, 7, 8, 9])
    assert d == {"count": 10, "p50": 5, "p90": 9, "max": 10}, d
    assert checker.distribution([])["max"] is None
    assert checker.distribution([7]) == {"count": 1, "p50": 7, "p90": 7, "max": 7}
    b = checker.parse_bounds("kill-leader=2.5,pause-follower=off", {"kill-leader": 5, "disk-full": 4})
    assert b == {"kill-leader": 2.5, "pause-follower": None, "disk-full": 4}, b
    assert checker.bound_for(b, "pause-follower") is None and checker.bound_for(b, "other") is None
    b = checker.parse_bounds("*=9,truncate=1", {"kill-leader": 5})
    assert checker.bound_for(b, "kill-leader") == 9 and checker.bound_for(b, "new-kind") == 9
    assert checker.bound_for(b, "truncate") == 1
    b = checker.parse_bounds("*=9", {"kill-leader": 5, "client:*": 12})
    assert b["kill-leader"] == 9 and b["client:*"] == 12, b  # a client bound only by name
    b = checker.parse_bounds("client:*=off", {"client:*": 12})
    assert b["client:*"] is None, b
    try:
        checker.parse_bounds("kill-leader:5")
        raise AssertionError("a malformed bound was accepted")
    except ValueError:
        pass


def expectations(end, lines):
    """session_expectations (runner.py) on a hand-made ephemeral client's log."""
    import tempfile
    import runner  # kazoo is imported by it, not used here
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        return runner.session_expectations({"end": end, "state_file": f.name})
    finally:
        os.unlink(f.name)


@test
def ephemerals_of_a_session_lost_and_replaced_must_be_gone_and_of_the_new_one_exist():
    # The harness's own false alarm behind the once-seen "ephemeral of an ended session still
    # exists": kazoo replaced a LOST session with a new one between the two creates, and the
    # second node, owned by the live new session, was expected gone.
    log = ["session 17", "state CONNECTED 17", "attempt /eph/c1-s11-0", "created /eph/c1-s11-0 17",
           "state SUSPENDED 0", "state LOST 0", "state CONNECTED 18", "attempt /eph/c1-s11-1",
           "created /eph/c1-s11-1 18", "ready"]
    gone, exist = expectations("kept", log)
    assert gone == [("/eph/c1-s11-0", 18)], gone
    assert exist == ["/eph/c1-s11-1"], exist
    # the same client closed or killed: both must be gone, whoever owns them
    for end in ("closed", "killed"):
        gone, exist = expectations(end, log)
        assert gone == [("/eph/c1-s11-0", None), ("/eph/c1-s11-1", None)] and exist == []


@test
def ephemerals_of_a_session_that_was_never_lost_must_exist_and_unknown_creates_are_bounded():
    log = ["session 5", "state CONNECTED 5", "attempt /eph/c2-s5-0", "created /eph/c2-s5-0 5",
           "attempt /eph/c2-s5-1", "unknown /eph/c2-s5-1 ConnectionLoss", "state SUSPENDED 0",
           "state CONNECTED 5", "ready"]
    gone, exist = expectations("kept", log)
    assert exist == ["/eph/c2-s5-0"], exist
    # an unknown create may exist, but only as the live session's
    assert gone == [("/eph/c2-s5-1", 5)], gone


def main():
    print("1..%d" % len(TESTS))
    failed = 0
    for i, fn in enumerate(TESTS, 1):
        try:
            fn()
            print("ok %d - %s" % (i, fn.__name__.replace("_", " ")))
        except Exception as exc:  # an assertion or a crash of the checker: both fail the test
            failed += 1
            print("not ok %d - %s: %r" % (i, fn.__name__.replace("_", " "), exc))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
