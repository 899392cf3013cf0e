"""The ensemble under test for the fault-injection runner (runner.py): its members' processes,
addresses and logs as tests/integration/helpers.bash laid them out in the state directory, kill -9,
restart and signals by PID, a member's last words, and the monotonic clock every record uses.
Called by runner.py, nemesis.py and workloads.py; it imports none of them.
"""
import os
import re
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HELPERS = os.path.join(REPO, "tests", "integration", "helpers.bash")


def now_ns():
    return time.monotonic_ns()


class Members:
    """The ensemble under test, as helpers.bash laid it out in the state directory."""

    def __init__(self, state_dir, count):
        self.state_dir = state_dir
        self.count = count
        self.ids = list(range(1, count + 1))

    def dir(self, n):
        return os.path.join(self.state_dir, "m%d" % n)

    def read(self, n, name):
        with open(os.path.join(self.dir(n), name)) as f:
            return f.read().strip()

    def addr(self, n):
        return "127.0.0.%d" % n

    def port(self, n):
        return int(self.read(n, "port"))

    def pid(self, n):
        try:
            return int(self.read(n, "pid"))
        except (OSError, ValueError):
            return None

    def hosts(self, first=None):
        order = list(self.ids)
        if first is not None:
            i = order.index(first)
            order = order[i:] + order[:i]
        return ",".join("%s:%d" % (self.addr(n), self.port(n)) for n in order)

    def alive(self, n):
        pid = self.pid(n)
        if not pid:
            return False
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def fourlw(self, n, word, timeout=3.0):
        try:
            with socket.create_connection((self.addr(n), self.port(n)), timeout=timeout) as s:
                s.sendall(word.encode())
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                return out.decode(errors="replace")
        except OSError:
            return ""

    def mode(self, n):
        m = re.search(r"^Mode: (\w+)", self.fourlw(n, "srvr"), re.M)
        return m.group(1) if m else None

    def leader(self):
        """The member that leads, or None. When two say so (one that was paused or cut off
        still believes it leads until it notices), the one at the higher zxid: its epoch is
        the newer."""
        best, best_zxid = None, -1
        for n in self.ids:
            if not self.alive(n):
                continue
            out = self.fourlw(n, "srvr")
            if not re.search(r"^Mode: leader\b", out, re.M):
                continue
            m = re.search(r"^Zxid: (0x[0-9a-fA-F]+)", out, re.M)
            zxid = int(m.group(1), 16) if m else 0
            if zxid > best_zxid:
                best, best_zxid = n, zxid
        return best

    def helper(self, command):
        """Run a helpers.bash function for this state directory; returns (rc, output)."""
        env = dict(os.environ, ZN_STATE_DIR=self.state_dir)
        p = subprocess.run(["bash", "-c", "source %s && %s" % (HELPERS, command)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=180)
        return p.returncode, p.stdout.decode(errors="replace")

    def kill9(self, n):
        pid = self.pid(n)
        if pid and self.alive(n):
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while self.alive(n) and time.time() < deadline:
            time.sleep(0.05)

    def restart(self, n):
        if self.alive(n):
            return True, "already running"
        rc, out = self.helper("restart_member %d" % n)
        return rc == 0, out

    def signal(self, n, sig):
        pid = self.pid(n)
        if pid and self.alive(n):
            os.kill(pid, sig)

    def peer_ports(self):
        ports = []
        for n in self.ids:
            ports += [self.read(n, "peer_port"), self.read(n, "election_port")]
        return ",".join(ports)


def read_lines(path):
    try:
        with open(path) as f:
            return [line.strip() for line in f]
    except OSError:
        return []


def log_since_start(members, n):
    """The member's log lines since its last start."""
    lines = read_lines(os.path.join(members.dir(n), "server.log"))
    starts = [i for i, line in enumerate(lines) if line.startswith("=== start")]
    return lines[starts[-1]:] if starts else lines


def last_log_error(members, n):
    """The last WARN/ERROR line the member logged since its last start, or a note that it
    died without one (killed by a signal)."""
    since = log_since_start(members, n)
    # "Assertion" too: assert(3) and liblmdb's own message spell it so (znoded routes LMDB's
    # through an ERROR line, but a library's assert() would still print it).
    marks = [i for i, line in enumerate(since)
             if " ERROR " in line or " WARN " in line or "assertion" in line.lower()]
    if marks:
        words = "last words: " + since[marks[-1]][:300]
        # What it logged after them (INFO lines, a backtrace): where a death is unexplained,
        # the report is all CI shows of it.
        after = [line.strip()[:160] for line in since[marks[-1] + 1:] if line.strip()]
        if after:
            words += " | then: " + " | ".join(after[:4])
        return words
    return "no error logged: it died by a signal"


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def wipe_member_data(members, n):
    for sub in ("data", "datalog"):
        d = os.path.join(members.dir(n), sub)
        for root, dirs, names in os.walk(d, topdown=False):
            for name in names:
                if not (root == os.path.join(members.dir(n), "data") and name == "myid"):
                    os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
