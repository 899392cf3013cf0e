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
