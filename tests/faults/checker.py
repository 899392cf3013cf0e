"""Checkers for the histories tests/faults/runner.py records.

This module owns the judgement of a run: whether each register history is linearizable (the
Wing-Gong search with Lowe's memoisation, written here), whether an acknowledged create was ever
lost or an uninvoked one appeared, and whether a client's reads went back in zxid. It reads no
clock and talks to no server: every function takes recorded operations and returns anomalies, so
the unit tests (test_checker.py) feed it hand-made histories.

An operation is a dict:
  process  the client that ran it (any hashable)
  f        'read' | 'write' | 'cas'
  value    read: None; write: the value written; cas: [expected_version, new_value]
  status   'ok' | 'fail' | 'unknown'   (unknown: a timeout or lost connection: it may or may not
           have taken effect, at any moment after its invocation)
  result   read ok: [value, version]; cas fail: 'badversion'
  start, end  invocation and completion times in ns (end is ignored for unknown)

The register model is ZooKeeper's znode data: state (value, version). setData without a version
sets the value and bumps the version; setData with version e succeeds only when the version is e,
and otherwise fails with BADVERSION having changed nothing, which is an observation of the state
(the version was not e) and is checked as one. Reads are getData after sync.
"""

# Most search steps spent on one history before it is reported as undecided rather than
# searched forever (the search is exponential in the worst case).
LINEARIZABILITY_MAX_STEPS = 5_000_000
# Most anomalies the set checker lists before it stops (one lost create shows in every read).
SET_ANOMALIES_MAX = 100


class _Entry:
    """A call or return event in the doubly linked event list of the WGL search."""
    __slots__ = ("op_index", "is_call", "match", "prev", "next")

    def __init__(self, op_index, is_call):
        self.op_index = op_index
        self.is_call = is_call
        self.match = None
        self.prev = None
        self.next = None


def register_step(state, op):
    """Apply op to state; return the new state, or None when op cannot happen in state."""
    value, version = state
    f = op["f"]
    if f == "read":
        result = op["result"]
        return state if (result[0] == value and result[1] == version) else None
    if f == "write":
        return (op["value"], version + 1)
    if f == "cas":
        expected, new_value = op["value"]
        if op["status"] == "fail":
            # BADVERSION: nothing changed, and the version was not the expected one.
            return state if version != expected else None
        return (new_value, version + 1) if version == expected else None
    raise ValueError("unknown operation %r" % (f,))


def _prepare(ops):
    """The ops the search must place: definite ones, and unknown ones that may change state.
    A failed read and a failed write observed nothing and changed nothing; an unknown read
    observed nothing either. A failed cas is an observation (BADVERSION) and stays."""
    kept = []
    for op in ops:
        st = op["status"]
        if op["f"] == "read" and st != "ok":
            continue
        if op["f"] == "write" and st == "fail":
            continue
        if op["f"] == "cas" and st == "fail" and op.get("result") != "badversion":
            continue
        kept.append(op)
    return kept


def check_register(ops, initial_state, max_steps=LINEARIZABILITY_MAX_STEPS):
    """Is this single-register history linearizable? (see _search for the result's form)

    Unknown writes are the search's worst case: each stays a candidate forever, so the full
    search is exponential in how many there are. Most never took effect (a client on the
    minority side of a partition), so a first search leaves out the unknown writes whose value
    no read saw. That is sound: a linearization in which they did not happen is one of those
    allowed. Only when it finds none does the full search run.
    """
    quick = real_time_violations(ops)
    if quick:
        return {"valid": False, "ops": len(ops), "steps": 0, "stuck_at": quick[0][1],
                "reason": quick[0][0]}
    observed = {tuple(op["result"])[0] for op in ops if op["f"] == "read" and op["status"] == "ok"}
    def written(op):
        return op["value"] if op["f"] == "write" else op["value"][1]
    unseen = [op for op in ops
              if op["status"] == "unknown" and op["f"] != "read" and written(op) not in observed]
    if unseen:
        ids = {id(op) for op in unseen}
        res = _search([op for op in ops if id(op) not in ids], initial_state, max_steps)
        if res["valid"] is True:
            res["reason"] = "linearizable with %d unobserved unknown writes left out" % len(unseen)
            return res
    return _search(ops, initial_state, max_steps)


def real_time_violations(ops):
    """Cheap proofs of non-linearizability that need no search, each sound on its own:
    a value read at two versions; a read that completed before another began but saw a higher
    version; a read that saw a value before its write was invoked; a read that began after a
    write completed but saw a version below the one that write's value was read at.
    Returns [(reason, op)], empty when none applies (the history may still be invalid)."""
    reads = sorted((op for op in ops if op["f"] == "read" and op["status"] == "ok"),
                   key=lambda op: op["start"])
    version_of = {}
    for op in reads:
        value, version = op["result"]
        if version_of.setdefault(value, version) != version:
            return [("value %r read at versions %d and %d" % (value, version_of[value], version), op)]
    found = []
    by_end = sorted(reads, key=lambda op: op["end"])
    best_before = None  # the highest-version read among those that ended before op began
    i = 0
    for op in reads:
        while i < len(by_end) and by_end[i]["end"] < op["start"]:
            if best_before is None or by_end[i]["result"][1] > best_before["result"][1]:
                best_before = by_end[i]
            i += 1
        if best_before is not None and op["result"][1] < best_before["result"][1]:
            found.append(("stale read: %s began after %s had completed" %
                          (_describe(op), _describe(best_before)), op))
            return found
    writes = {}
    for op in ops:
        if op["f"] in ("write", "cas") and op["status"] != "fail":
            writes[op["value"] if op["f"] == "write" else op["value"][1]] = op
    for op in reads:
        w = writes.get(op["result"][0])
        if w is not None and op["end"] < w["start"]:
            return [("%s saw a value before its write %s was invoked" % (_describe(op), _describe(w)), op)]
        if op["result"][0] != "" and w is None:
            return [("%s saw a value no acknowledged or pending write wrote" % _describe(op), op)]
    for op in reads:
        for value, w in writes.items():
            if w["status"] == "ok" and w["end"] < op["start"] and value in version_of \
                    and op["result"][1] < version_of[value]:
                return [("stale read: %s began after %s completed, whose value was read at version %d"
                         % (_describe(op), _describe(w), version_of[value]), op)]
    return found


def _search(ops, initial_state, max_steps):
    """Is this single-register history linearizable?

    Returns a dict: {'valid': True|False|None, 'ops': n, 'steps': k, 'reason': str,
    'stuck_at': op or None}. valid None means the step budget ran out (undecided).
    Unknown ops return at +infinity and need not be linearized at all ("may or may not have
    happened"): the search succeeds once every definite op is placed.
    """
    ops = _prepare(ops)
    n = len(ops)
    if n == 0:
        return {"valid": True, "ops": 0, "steps": 0, "reason": "empty", "stuck_at": None}
    events = []
    infinity = float("inf")
    for i, op in enumerate(ops):
        end = infinity if op["status"] == "unknown" else op["end"]
        if op["status"] != "unknown" and end < op["start"]:
            raise ValueError("op %d completes before it starts" % i)
        events.append((op["start"], 0, i))
        events.append((end, 1, i))
    # At equal times calls sort before returns: ops that touch in time are taken as concurrent,
    # the generous reading when clocks cannot order them.
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(-1, False)
    tail = head
    calls = {}
    for t, kind, i in events:
        entry = _Entry(i, kind == 0)
        if kind == 0:
            calls[i] = entry
        else:
            calls[i].match = entry
        entry.prev = tail
        tail.next = entry
        tail = entry

    def lift(entry):
        entry.prev.next = entry.next
        if entry.next:
            entry.next.prev = entry.prev
        ret = entry.match
        ret.prev.next = ret.next
        if ret.next:
            ret.next.prev = ret.prev

    def unlift(entry):
        ret = entry.match
        ret.prev.next = ret
        if ret.next:
            ret.next.prev = ret
        entry.prev.next = entry
        if entry.next:
            entry.next.prev = entry

    # Candidates are tried definite ops first and unknown ops only when no definite op can be
    # placed (mode "unknown" rescans the same frontier for them). Every candidate is still tried,
    # so the search stays complete; the order only lets a valid history place unknown ops where
    # an observation needs them instead of everywhere.
    definite_left = sum(1 for op in ops if op["status"] != "unknown")
    state = initial_state
    linearized = 0
    cache = set()
    stack = []
    entry = head.next
    unknown_mode = False
    steps = 0
    deepest = 0
    stuck_at = None
    while definite_left > 0:
        steps += 1
        if steps > max_steps:
            return {"valid": None, "ops": n, "steps": steps, "stuck_at": None,
                    "reason": "search budget of %d steps exhausted" % max_steps}
        if entry is not None and entry.is_call:
            op = ops[entry.op_index]
            if (op["status"] == "unknown") == unknown_mode:
                new_state = register_step(state, op)
                if new_state is not None:
                    bits = linearized | (1 << entry.op_index)
                    key = (bits, new_state)
                    if key not in cache:
                        cache.add(key)
                        stack.append((entry, state, unknown_mode))
                        state = new_state
                        linearized = bits
                        if op["status"] != "unknown":
                            definite_left -= 1
                        lift(entry)
                        if len(stack) > deepest:
                            deepest = len(stack)
                        entry = head.next
                        unknown_mode = False
                        continue
            entry = entry.next
            continue
        # The first return of an op not yet placed: no candidate of this mode fits here.
        if not unknown_mode:
            unknown_mode = True
            entry = head.next
            continue
        if entry is not None and stuck_at is None and len(stack) >= deepest:
            stuck_at = ops[entry.op_index]
        if not stack:
            return {"valid": False, "ops": n, "steps": steps, "stuck_at": stuck_at,
                    "reason": "no linearization places %s" % _describe(stuck_at)}
        entry, state, unknown_mode = stack.pop()
        linearized &= ~(1 << entry.op_index)
        if ops[entry.op_index]["status"] != "unknown":
            definite_left += 1
        unlift(entry)
        entry = entry.next
    return {"valid": True, "ops": n, "steps": steps, "reason": "linearizable", "stuck_at": None}


def _describe(op):
    if op is None:
        return "the history"
    return "%s %s %s by %s -> %s [%s..%s]" % (op["status"], op["f"], op.get("value"),
                                               op.get("process"), op.get("result"),
                                               op.get("start"), op.get("end"))


def check_set(creates, reads, final_reads):
    """The set workload: sequential creates of distinct names, reads of the children.

    creates: ops {'name', 'status', 'start', 'end'} (name: the prefix the client asked for; the
      server appends the sequence number, which the read side strips).
    reads: ops {'status','start','end','result': [names]} made during the run (sync then
      getChildren).
    final_reads: {member: [names]} read from every member after healing.
    Anomalies: an acknowledged create missing from a read that began after the ack (lost),
    missing from any member at the end (lost), or a name nobody tried to create (phantom).
    """
    anomalies = []
    acked = {c["name"]: c for c in creates if c["status"] == "ok"}
    attempted = {c["name"] for c in creates}
    # Reads in start order against the acknowledged creates in ack order: `required` grows
    # as acks pass, and each read is one C-level subset test, not a loop over every create.
    by_ack = sorted(acked.values(), key=lambda c: c["end"])
    required = set()
    i = 0
    for r in sorted((r for r in reads if r["status"] == "ok"), key=lambda r: r["start"]):
        while i < len(by_ack) and by_ack[i]["end"] < r["start"]:
            required.add(by_ack[i]["name"])
            i += 1
        seen = set(r["result"])
        if not required <= seen:
            missing = sorted(required - seen)
            anomalies.append("%d creates acknowledged before a read that began at %d are missing "
                             "from it, e.g. %s" % (len(missing), r["start"], missing[:5]))
        phantom = sorted(seen - attempted)
        if phantom:
            anomalies.append("read at %d saw %d names no client created, e.g. %s"
                             % (r["start"], len(phantom), phantom[:5]))
        if len(anomalies) > SET_ANOMALIES_MAX:
            anomalies.append("... stopped after %d anomalies" % SET_ANOMALIES_MAX)
            return anomalies
    for member, names in sorted(final_reads.items()):
        seen = set(names)
        missing = sorted(set(acked) - seen)
        if missing:
            anomalies.append("member %s lost %d acknowledged creates, e.g. %s"
                             % (member, len(missing), missing[:5]))
        phantom = sorted(seen - attempted)
        if phantom:
            anomalies.append("member %s has %d children nobody created, e.g. %s"
                             % (member, len(phantom), phantom[:5]))
    return anomalies


def check_monotonic(ops):
    """Each session's replies never go back in zxid, even across a change of server.
    ops: {'process', 'session', 'status', 'zxid', 'start'}, in the order each process ran them.
    """
    anomalies = []
    last = {}
    for op in ops:
        if op["status"] != "ok" or not op.get("zxid") or not op.get("session"):
            continue
        key = (op["process"], op["session"])
        prev = last.get(key)
        if prev is not None and op["zxid"] < prev["zxid"]:
            anomalies.append("process %s session 0x%x: reply at zxid 0x%x after one at 0x%x (%s %s)"
                             % (op["process"], op["session"], op["zxid"], prev["zxid"],
                                op.get("f"), op.get("member", "?")))
        if prev is None or op["zxid"] >= prev["zxid"]:
            last[key] = op
    return anomalies


# ---- unavailability windows ----

def _percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list (q in 0..100); None when empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def distribution(values):
    """{'count', 'p50', 'p90', 'max'} of a list of numbers (None entries for an empty list)."""
    v = sorted(values)
    return {"count": len(v), "p50": _percentile(v, 50), "p90": _percentile(v, 90),
            "max": v[-1] if v else None}


def _attribute(a, b, injections):
    """Which fault a no-success interval (a, b) belongs to: the first fault injected inside it
    (writes stopped with it), else the last fault injected before it began (an outage that
    starts later, say when a killed member restarts, is that fault's doing); -1 before any."""
    import bisect
    i = bisect.bisect_right(injections, a)
    if i < len(injections) and injections[i] < b:
        return i
    return i - 1


def unavailability_windows(ops, faults, run_end):
    """For every fault, the longest time in which no write succeeded that belongs to it.

    ops: the write operations of every write client, any status: {'process', 'status'
      ('ok' | 'fail' | 'unknown'), 'start', 'end'} (ns, one clock; an unknown op's end is
      when its client gave up on it).
    faults: [{'kind', 'start', ...}] in injection order ('start': when it was injected).
    run_end: when the workload stopped (ns).

    The successes of all write clients together, in completion order, cut the run into
    intervals with no success in them. Each interval (a, b) belongs to the first fault injected
    inside it, or else to the last fault injected before a (before the first fault: the
    baseline). For an interval two lengths are measured:
      window  from the first failed or stalled write to the first success after it: from a if
              some write was in flight at a (it did not succeed before b), else from the first
              write invoked after a. An interval in which no write was even attempted is 0.
      gap     from the last success before (a) to the first success after (b): the per-client
              reading of testing.md, taken across clients.
    The interval with no success after it ends at run_end and is marked open.
    Per client the same is done with that client's own successes ('clients': its longest gap).

    Returns (per_fault, baseline): per_fault is parallel to faults, each a dict
      window, gap (ns), start, end (of the window), open, clients {process: longest own gap},
      worst_client (process or None), worst_client_gap (ns);
    baseline is the same dict for the intervals before the first fault (window 0 if none).
    Intervals before the first success of the run are not counted (clients still connecting).
    """
    import bisect
    injections = [f["start"] for f in faults]
    ok_ends = sorted(op["end"] for op in ops if op["status"] == "ok")
    by_start = sorted(ops, key=lambda op: op["start"])
    starts = [op["start"] for op in by_start]
    prefix_max_end = []
    best = float("-inf")
    for op in by_start:
        best = max(best, op["end"])
        prefix_max_end.append(best)

    def empty():
        return {"window": 0, "gap": 0, "start": None, "end": None, "open": False,
                "clients": {}, "worst_client": None, "worst_client_gap": 0}

    result = [empty() for _ in faults]
    baseline = empty()

    def slot(index):
        return baseline if index < 0 else result[index]

    for k, a in enumerate(ok_ends):
        is_open = k + 1 == len(ok_ends)
        b = run_end if is_open else ok_ends[k + 1]
        if b <= a:
            continue
        # the first failed or stalled write: one in flight at a, else the first invoked after a
        i = bisect.bisect_right(starts, a)
        if i > 0 and prefix_max_end[i - 1] > a:
            w_start = a
        elif i < len(starts) and starts[i] < b:
            w_start = starts[i]
        else:
            w_start = b
        entry = slot(_attribute(a, b, injections))
        if entry["end"] is None or (b - w_start, b - a) > (entry["window"], entry["gap"]):
            entry.update(window=b - w_start, gap=b - a, start=w_start, end=b, open=is_open)

    per_client = {}
    for op in ops:
        if op["status"] == "ok":
            per_client.setdefault(op["process"], []).append(op["end"])
    for process, ends in per_client.items():
        ends.sort()
        for k, a in enumerate(ends):
            b = run_end if k + 1 == len(ends) else ends[k + 1]
            if b <= a:
                continue
            entry = slot(_attribute(a, b, injections))
            if b - a > entry["clients"].get(process, 0):
                entry["clients"][process] = b - a
    for entry in result + [baseline]:
        if entry["clients"]:
            process = max(sorted(entry["clients"]), key=lambda p: entry["clients"][p])
            entry["worst_client"], entry["worst_client_gap"] = process, entry["clients"][process]
    return result, baseline


def parse_bounds(spec, defaults=None):
    """'kind=seconds,kind=off,...' over defaults -> {kind: seconds or None (not bounded)}.
    '*=S' sets every kind named in defaults (and any kind not named later) to S; the clients'
    bounds (client:KIND, client:*) only by name."""
    bounds = dict(defaults or {})
    fallback = bounds.pop("*", None)
    for item in (spec or "").replace(" ", ",").split(","):
        if not item:
            continue
        if "=" not in item:
            raise ValueError("window bound %r is not kind=seconds" % item)
        kind, value = item.split("=", 1)
        seconds = None if value in ("off", "none", "") else float(value)
        if kind == "*":
            fallback = seconds
            # (the clients' own bound, client:KIND, is not a kind of fault)
            bounds = {k: v if k.startswith("client:") else seconds for k, v in bounds.items()}
        else:
            bounds[kind] = seconds
    if fallback is not None:
        bounds["*"] = fallback
    return bounds


def bound_for(bounds, kind):
    """The bound of a fault kind in seconds, or None when it is not bounded."""
    return bounds[kind] if kind in bounds else bounds.get("*")
