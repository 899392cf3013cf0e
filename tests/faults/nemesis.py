"""The fault-injection runner's nemesis (runner.py lists the fault kinds): it injects faults on
a seeded random schedule, records when each was injected and healed, heals them, and at the end
heals everything. Called by runner.py; uses members.py for processes and logs.
"""
import os
import re
import signal
import subprocess
import time

from members import last_line, last_log_error, log_since_start, now_ns, wipe_member_data

PAUSE_S = (6.0, 9.0)          # SIGSTOP length: above the session timeout and syncLimit x tickTime
FAULT_HOLD_S = (4.0, 10.0)    # how long a kill, partition or full disk lasts
FAULT_GAP_S = (1.0, 4.0)      # quiet time between faults
SETTLE_S = 45.0               # after healing, how long a leader may take to serve again
# What znoded logs when it stops on purpose: its fatal() on a log write with no space left, its
# refusal of a damaged store (replication/store_format.c for data.mdb, store_wal_format.c for a
# log segment, store_recover.c for a snapshot file; the last two name the offset), its note that
# a short store file lacks only pages no commit uses, its fall back from a damaged snapshot file
# to an older one.
DISK_FULL_EXIT = "no space left on device"
STORE_REFUSAL = "data.mdb is damaged: "
SNAPSHOT_REFUSAL = "is damaged at offset"
SEGMENT = re.compile(r"^log\.[0-9a-f]{16}$")
STORE_UNUSED_PAGES = "every page in use is there"
SNAPSHOT_FALLBACK = "dropping the damaged snapshot file"


def is_snapshot_file(name):
    """snapshot.<zxid in hex>: a snapshot file znoded recorded (not .tmp, not .damaged)."""
    parts = name.split(".")
    return (len(parts) == 2 and parts[0] == "snapshot" and parts[1] != "" and
            all(c in "0123456789abcdef" for c in parts[1]))


# ---- nemesis ----

class Nemesis:
    """Injects faults on a seeded random schedule and heals them; counts faults by kind."""

    def __init__(self, members, rng, kinds, disk_member, log, tag):
        self.m = members
        self.rng = rng
        self.kinds = kinds
        self.disk_member = disk_member
        self.log = log
        self.tag = tag
        self.counts = {}
        self.events = []
        self.paused = set()
        self.filler = None
        self.crashes = []  # (member, last words): members that died with no fault on them
        self.expected_exits = []  # (member, why): stopped by a fault on purpose, with its message
        self.store_damage = {"cuts": 0, "refused": 0, "unused-pages": 0, "fell-back": 0,
                             "rejoined": 0}
        self.store_anomalies = []  # a cut store started on, a crash on it, a wiped member stuck
        # Every fault injected, in order: {'kind', 'detail', 'member', 'start', 'heal', 'served'}
        # (monotonic ns: when it was injected, when it was removed, when the member it hit served
        # again), for the write-unavailability windows (checker.unavailability_windows).
        self.faults = []
        self.forced_leader = False  # the first round aims kill and pause at the leader

    def begin(self, kind, member, detail=""):
        """Record a fault as injected now; returns its record (heal and served are set later)."""
        rec = {"kind": kind, "member": member, "detail": detail, "start": now_ns(),
               "heal": None, "served": None, "clock": time.strftime("%H:%M:%S")}
        self.faults.append(rec)
        return rec

    def note(self, kind, detail):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        line = "%s %s: %s" % (time.strftime("%H:%M:%S"), kind, detail)
        self.events.append(line)
        self.log(line)

    def pick_member(self, leader_weight=0.6):
        leader = self.m.leader()
        if self.forced_leader:
            leader_weight = 1.0
        if leader is not None and self.rng.random() < leader_weight:
            return leader, True
        n = self.rng.choice(self.m.ids)
        return n, n == leader

    # partitions
    def drop(self, a, b):
        ports = self.m.peer_ports()
        for src, dst in ((a, b), (b, a)):
            subprocess.run(["iptables", "-I", "INPUT", "-s", self.m.addr(src), "-d", self.m.addr(dst),
                            "-p", "tcp", "-m", "multiport", "--ports", ports,
                            "-m", "comment", "--comment", self.tag, "-j", "DROP"], check=True)

    def cut(self, side_a, side_b):
        for a in side_a:
            for b in side_b:
                self.drop(a, b)

    def heal_partitions(self):
        while True:
            out = subprocess.run(["iptables", "-S", "INPUT"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL).stdout.decode()
            rules = [line for line in out.splitlines() if "--comment %s" % self.tag in line
                     or '--comment "%s"' % self.tag in line]
            if not rules:
                return
            spec = rules[0].split()
            spec[0] = "-D"
            if subprocess.run(["iptables"] + spec).returncode != 0:
                return

    def partition(self):
        ids = list(self.m.ids)
        self.rng.shuffle(ids)
        leader = self.m.leader()
        variant = self.rng.choice(["isolate-one", "isolate-leader", "majority-minority", "bridge"])
        if variant == "isolate-leader" and leader is None:
            variant = "isolate-one"
        # The fault's kind for the windows says where the leader was: that decides the outage.
        if variant in ("isolate-one", "isolate-leader"):
            alone = leader if variant == "isolate-leader" else ids[0]
            kind = "partition-isolate-" + ("leader" if alone == leader else "follower")
        elif variant == "majority-minority":
            kind = "partition-split-leader-" + ("minority" if leader in ids[:2] else "majority")
        else:
            kind = "partition-bridge"
        rec = self.begin(kind, None)
        if variant == "isolate-one":
            alone = ids[0]
            self.cut([alone], [n for n in ids if n != alone])
            detail = "isolate member %d" % alone
        elif variant == "isolate-leader":
            self.cut([leader], [n for n in ids if n != leader])
            detail = "isolate the leader, member %d" % leader
        elif variant == "majority-minority":
            minority, majority = ids[:2], ids[2:]
            self.cut(minority, majority)
            detail = "split %s | %s" % (sorted(minority), sorted(majority))
        else:
            a, bridge, b = ids[:2], ids[2], ids[3:]
            self.cut(a, b)
            detail = "bridge %s - %d - %s" % (sorted(a), bridge, sorted(b))
        self.note("partition", "%s (%s)" % (variant, detail))
        rec["detail"] = "%s (%s)" % (variant, detail)
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        self.heal_partitions()

    def partition_follower(self):
        """Isolate one follower: the case where a member that lost its leader may still answer
        from a stale tree until it notices (syncLimit x tickTime)."""
        leader = self.m.leader()
        followers = [n for n in self.m.ids if n != leader]
        alone = self.rng.choice(followers)
        rec = self.begin("partition-isolate-follower", alone)
        self.cut([alone], [n for n in self.m.ids if n != alone])
        self.note("partition", "isolate-follower (isolate member %d; leader %s)" % (alone, leader))
        rec["detail"] = "isolate member %d (leader %s)" % (alone, leader)
        # Short: what matters is the moment before the member notices, and many such moments.
        time.sleep(self.rng.uniform(2.5, 4.0))
        rec["heal"] = now_ns()
        self.heal_partitions()

    def kill(self):
        n, was_leader = self.pick_member()
        if not self.m.alive(n):
            return
        rec = self.begin("kill-leader" if was_leader else "kill-follower", n,
                         "kill -9 member %d%s" % (n, " (leader)" if was_leader else ""))
        self.m.kill9(n)
        self.note("kill", "kill -9 member %d%s" % (n, " (leader)" if was_leader else ""))
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        ok, out = self.m.restart(n)
        if ok:
            rec["served"] = now_ns()
        else:
            self.log("restart of member %d failed: %s" % (n, out[-500:]))

    def pause(self):
        leader = self.m.leader()
        n = leader if leader is not None and (self.forced_leader or self.rng.random() < 0.6) \
            else self.rng.choice(self.m.ids)
        if not self.m.alive(n):
            return
        length = self.rng.uniform(*PAUSE_S)
        rec = self.begin("pause-leader" if n == leader else "pause-follower", n,
                         "SIGSTOP member %d%s for %.1fs" % (n, " (leader)" if n == leader else "", length))
        self.m.signal(n, signal.SIGSTOP)
        self.paused.add(n)
        self.note("pause", "SIGSTOP member %d%s for %.1fs" % (n, " (leader)" if n == leader else "", length))
        time.sleep(length)
        rec["heal"] = now_ns()
        self.m.signal(n, signal.SIGCONT)
        self.paused.discard(n)

    def disk(self):
        n = self.disk_member
        if n is None:
            return
        data = os.path.join(self.m.dir(n), "data")
        was_leader = self.m.leader() == n
        self.filler = os.path.join(data, "filler")
        written = 0
        try:
            with open(self.filler, "wb") as f:
                block = b"\0" * (1 << 20)
                while True:
                    f.write(block)
                    f.flush()
                    written += 1
        except OSError:
            pass
        filled_at = time.strftime("%H:%M:%S")
        rec = self.begin("disk-full-" + ("leader" if was_leader else "follower"), n)
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        self.heal_disk()
        outcome = "kept running"
        if not self.m.alive(n):
            words = last_log_error(self.m, n)
            if DISK_FULL_EXIT in words:
                # znoded's fatal() on a log write that found no space: the expected way out.
                self.expected_exits.append((n, "disk full"))
            else:
                self.crashes.append((n, "during a full disk, without its no-space message: " + words))
            outcome = "exited (%s); filler removed and restarted" % words
            ok, out = self.m.restart(n)
            if ok:
                rec["served"] = now_ns()
            else:
                self.log("restart of member %d failed: %s" % (n, out[-500:]))
        self.note("disk-full", "member %d's data tmpfs filled at %s (%d MiB of filler); %s"
                  % (n, filled_at, written, outcome))
        rec["detail"] = "member %d%s: %s" % (n, " (leader)" if was_leader else "", outcome)

    def heal_disk(self):
        if self.filler and os.path.exists(self.filler):
            os.unlink(self.filler)
        self.filler = None

    def truncate(self):
        """Cut a stopped follower's store file (LMDB's data.mdb, or one of its snapshot files,
        snapshot.<zxid>). znoded must refuse to start on it with one line naming the file (or,
        when only pages no commit uses were cut, or an older snapshot and the log cover a cut
        snapshot file, start and say so); then do what that line tells an operator: move the
        data away (here: wipe it) and start the member again, which rejoins empty and gets a
        snapshot from the leader."""
        leader = self.m.leader()
        candidates = [n for n in self.m.ids if n != leader and self.m.alive(n)]
        if not candidates:
            return
        n = self.rng.choice(candidates)
        rec = self.begin("truncate", n)
        self.m.kill9(n)
        files, segments = [], []
        for root, _, names in os.walk(self.m.dir(n), followlinks=True):  # the disk member's are symlinks
            files += [os.path.join(root, f) for f in names
                      if f.endswith(".mdb") or is_snapshot_file(f)]
            segments += [os.path.join(root, f) for f in names if SEGMENT.match(f)]
        files = [f for f in files if not f.endswith("lock.mdb")]
        if not files:
            self.log("truncate: member %d has no store file" % n)
            self.m.restart(n)
            return
        # LMDB's file, the newest snapshot file or the log's newest segment, as the draw falls
        snaps = [f for f in files if is_snapshot_file(os.path.basename(f))]
        mdbs = [f for f in files if f not in snaps]
        draw = self.rng.random()
        if segments and draw < 1 / 3:
            target = max(segments)
        elif snaps and (not mdbs or draw < 2 / 3):
            target = max(snaps, key=lambda f: int(os.path.basename(f).split(".")[1], 16))
        else:
            target = max(mdbs, key=os.path.getsize)
        size = os.path.getsize(target)
        cut = min(size // 2, self.rng.choice([1, 100, 4096, 3 * 4096 + 17]))
        os.truncate(target, size - cut)
        self.store_damage["cuts"] += 1
        ok, out = self.m.restart(n)
        since = log_since_start(self.m, n)
        refusal = [line for line in since if STORE_REFUSAL in line or
                   (SNAPSHOT_REFUSAL in line and "refusing to start" in line)]
        if ok:
            if any(SNAPSHOT_FALLBACK in line for line in since):
                self.store_damage["fell-back"] += 1
                outcome = "started: fell back from the cut snapshot file to an older one and the log"
            elif any(STORE_UNUSED_PAGES in line for line in since):
                self.store_damage["unused-pages"] += 1
                outcome = "started: the cut took only pages no commit uses (the store checked and said so)"
            else:
                outcome = "STARTED ON A CUT STORE without a word"
                self.store_anomalies.append("member %d started on a store cut by %d bytes without "
                                            "refusing or saying why it may" % (n, cut))
        else:
            if refusal:
                self.store_damage["refused"] += 1
                what = refusal[-1].split("store: ", 1)[-1].split("; refusing", 1)[0]
                outcome = "refused to start as expected (%s)" % what[:240]
                self.expected_exits.append((n, "refused a cut store"))
            else:
                outcome = "did not start and did not refuse cleanly (%s)" % last_log_error(self.m, n)
                self.store_anomalies.append("member %d, store cut by %d bytes: %s"
                                            % (n, cut, last_log_error(self.m, n)))
            # What the refusal tells the operator: move the data aside, start again.
            self.m.kill9(n)
            wipe_member_data(self.m, n)
            ok, out = self.m.restart(n)
            if ok:
                # restart waits until the member serves: it has synced with a leader.
                self.store_damage["rejoined"] += 1
                outcome += "; data wiped as an operator would, restarted, rejoined (%s)" % (
                    self.m.mode(n) or "mode unknown")
            else:
                outcome += "; data wiped, but it did not rejoin"
                self.store_anomalies.append("wiped member %d did not rejoin: %s" % (n, last_line(out)))
        rec["heal"] = rec["served"] = now_ns()  # it serves again (or gave up) by now
        rec["detail"] = "member %d: %s" % (n, outcome[:120])
        self.note("truncate", "member %d: cut %d bytes off %s (%d bytes); %s"
                  % (n, cut, os.path.relpath(target, self.m.dir(n)), size, outcome))

    def revive_crashed(self):
        """Between faults every member should be running: one that is not died on its own.
        Record it (a bug to report) and restart it so the run goes on with a quorum."""
        for n in self.m.ids:
            if not self.m.alive(n):
                words = last_log_error(self.m, n)
                self.crashes.append((n, words))
                line = "%s crash: member %d died on its own (%s); restarting it" % (
                    time.strftime("%H:%M:%S"), n, words)
                self.events.append(line)
                self.log(line)
                ok, out = self.m.restart(n)
                if not ok:
                    self.log("restart of crashed member %d failed: %s" % (n, out[-300:]))

    def settle(self):
        deadline = time.time() + SETTLE_S
        while time.time() < deadline and self.m.leader() is None:
            time.sleep(0.2)

    def run(self, stop, until):
        actions = {"kill": self.kill, "pause": self.pause, "partition": self.partition,
                   "disk": self.disk, "truncate": self.truncate,
                   "partition-follower": self.partition_follower}
        weights = {"kill": 3, "pause": 2, "partition": 3, "disk": 1, "truncate": 1,
                   "partition-follower": 1}
        kinds = [k for k in self.kinds if k in actions]
        # The first round injects each kind once (in random order), so even a short run covers
        # every kind; after that the schedule is random.
        first = list(kinds)
        self.rng.shuffle(first)
        while not stop and time.time() < until:
            stop.event.wait(self.rng.uniform(*FAULT_GAP_S))
            if stop or time.time() >= until:
                break
            # The first round aims its kill and pause at the leader: even a short run then
            # measures the failover windows users notice most.
            self.forced_leader = bool(first)
            kind = first.pop(0) if first else self.rng.choices(kinds, [weights[k] for k in kinds])[0]
            try:
                actions[kind]()
            except Exception as exc:  # a nemesis bug must not leave a fault in place
                self.log("nemesis %s raised %r" % (kind, exc))
            self.forced_leader = False
            self.heal_all(restart=False)
            self.settle()
            self.revive_crashed()

    def heal_all(self, restart=True):
        self.heal_partitions()
        for n in list(self.m.ids):
            if self.m.alive(n):
                self.m.signal(n, signal.SIGCONT)
        self.paused.clear()
        self.heal_disk()
        if restart:
            self.revive_crashed()
            for n in self.m.ids:
                if not self.m.alive(n):
                    ok, out = self.m.restart(n)
                    if not ok:
                        self.log("final restart of member %d failed: %s" % (n, out[-500:]))
