"""The report of bench/compare: medians over rounds, ratios, spreads, and the
files it writes (bench/results/<name>.json, .csv, .md), with the names and
contenders the driver (bench/compare) shares with it.  BASELINE is set by the
driver when --baseline-build is given."""
import csv
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
SAME_LOAD_FRACTION = 0.5  # of ZooKeeper's measured throughput in the same round

# ZooKeeper's JVM: Debian's default collector (G1) and a heap large enough for 1M znodes.
ZK_JVM_FLAGS = "-Xmx2g -Xss512k"

TARGETS = ("zookeeper", "znoded")
LABEL = {"znoded": "znodefs", "zookeeper": "ZooKeeper"}
# --baseline-build: {"znoded": path, "label": name, "commit": id}, the contender "baseline"
# (a znoded of another build, configured and loaded as znoded is); None without the option.
BASELINE = None


def contenders():
    """The servers of the throughput phase, in the order of each round."""
    return ("zookeeper", "baseline", "znoded") if BASELINE else TARGETS


def contender_fields(target):
    """What a measurement row says of a baseline contender (nothing for the others, as before):
    its label (in zn_bench's own label field, which compare leaves empty) and commit."""
    if target != "baseline":
        return {}
    return {"label": BASELINE["label"], "commit": BASELINE["commit"]}


def log(msg):
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- a minimal ZooKeeper wire client: connect, getData, close (for start-to-serving) ----


# ---- the report ----

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def spread(values):
    """(max - min) / median of the repeats' values: the noise between repeats."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or not statistics.median(values):
        return None
    return (max(values) - min(values)) / statistics.median(values)


def after_before(rows):
    """This build (znoded) over the baseline in one workload's rows: the ratio of the medians
    over rounds, each round's own ratio (the two ran back to back in it), and each one's spread
    between repeats, for ops/s and p99."""
    out = {}
    per_round = {}
    for r in rows:
        if r["target"] in ("znoded", "baseline") and r.get("ok"):
            per_round.setdefault(r["round"], {})[r["target"]] = r
    for k in ("ops_per_s", "p99_us"):
        for t in ("baseline", "znoded"):
            out[f"{t}_{k}_spread"] = spread([r.get(k) for r in rows if r["target"] == t and r.get("ok")])
        out[f"after_before_{k}"] = ratio(med([r.get(k) for r in rows if r["target"] == "znoded" and r.get("ok")]),
                                         med([r.get(k) for r in rows if r["target"] == "baseline" and r.get("ok")]))
        out[f"after_before_{k}_rounds"] = [
            ratio(both["znoded"].get(k), both["baseline"].get(k))
            for _, both in sorted(per_round.items()) if len(both) == 2]
    return out


def summarize(rows, meta):
    summary = {"meta": meta, "throughput": [], "same_load": [], "memory": [], "restart": [],
               "mount": [], "tls": []}
    for phase in ("throughput", "same_load"):
        keys = []
        for r in rows:
            if r["phase"] == phase and (r["topology"], r["workload"]) not in keys:
                keys.append((r["topology"], r["workload"]))
        for topo, wl in keys:
            entry = {"topology": topo, "workload": wl}
            for t in contenders():
                sel = [r for r in rows if r["phase"] == phase and r["topology"] == topo
                       and r["workload"] == wl and r["target"] == t and r.get("ok")]
                for k in ("ops_per_s", "p50_us", "p99_us", "p999_us"):
                    entry[f"{t}_{k}"] = med([r.get(k) for r in sel])
                entry[f"{t}_runs"] = len(sel)
                entry[f"{t}_rate"] = med([r.get("rate") for r in sel])
            entry["ops_ratio"] = ratio(entry["znoded_ops_per_s"], entry["zookeeper_ops_per_s"])
            for k in ("p50_us", "p99_us", "p999_us"):
                entry[f"{k}_ratio"] = ratio(entry[f"znoded_{k}"], entry[f"zookeeper_{k}"])
            if BASELINE:
                entry.update(after_before([r for r in rows if r["phase"] == phase
                                           and r["topology"] == topo and r["workload"] == wl]))
            summary[phase].append(entry)
    tls_keys = []
    for r in rows:
        if r["phase"] == "tls" and (r["topology"], r["workload"]) not in tls_keys:
            tls_keys.append((r["topology"], r["workload"]))
    for topo, wl in tls_keys:
        entry = {"topology": topo, "workload": wl}
        for t in TARGETS:
            for transport in ("plain", "tls"):
                sel = [r for r in rows if r["phase"] == "tls" and r["topology"] == topo
                       and r["workload"] == wl and r["target"] == t
                       and r["transport"] == transport and r.get("ok")]
                for k in ("ops_per_s", "p50_us", "p99_us"):
                    entry[f"{t}_{transport}_{k}"] = med([r.get(k) for r in sel])
                entry[f"{t}_{transport}_runs"] = len(sel)
            # the cost of TLS on this server: its TLS throughput over its plain one
            entry[f"{t}_tls_over_plain"] = ratio(entry[f"{t}_tls_ops_per_s"], entry[f"{t}_plain_ops_per_s"])
        entry["tls_ops_ratio"] = ratio(entry["znoded_tls_ops_per_s"], entry["zookeeper_tls_ops_per_s"])
        summary["tls"].append(entry)
    for r in rows:
        if r["phase"] in ("memory", "restart", "mount"):
            summary[r["phase"]].append(r)
    scale = [r for r in rows if r["phase"] == "scale"]
    if scale:  # only then: a report without it stays as it was
        summary["scale"] = scale
    loads = sorted(r["loadavg_1m"] for r in rows if r.get("loadavg_1m") is not None)
    summary["loadavg_1m"] = ({"min": loads[0], "median": med(loads), "max": loads[-1]}
                             if loads else None)
    return summary


def fmt_pct(v):
    return "-" if v is None else f"{v * 100:.0f}%"


def fmt_range(values):
    values = [v for v in values if v is not None]
    return "-" if not values else f"{min(values):.2f}-{max(values):.2f}"


def after_before_report(summary):
    """The Markdown section of --baseline-build: this build beside the baseline, per workload."""
    lb = BASELINE["label"]
    out = ["", f"## After/before: this build ({summary['meta']['commit']}) over {lb} "
               f"({BASELINE['commit']}), same rounds", "",
           "after/before: ratio of the medians over rounds (ops/s: >1 is faster; p99: <1 is "
           "better); per round: the range of each round's own ratio (the two ran back to back); "
           "spread: (max - min) / median of each one's repeats, the noise between repeats. A "
           "workload is slower beyond the noise when its ops/s after/before is below 1 by more "
           "than the spreads.", "",
           f"| topology | workload | ops/s {lb} | ops/s after | after/before | per round | "
           f"spread {lb} | spread after | p99 us {lb} | p99 us after | p99 after/before | "
           "p99 per round |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for e in summary["throughput"]:
        out.append(f"| {e['topology']} | {e['workload']} | {fmt(e['baseline_ops_per_s'])} | "
                   f"{fmt(e['znoded_ops_per_s'])} | {fmt_ratio(e['after_before_ops_per_s'])} | "
                   f"{fmt_range(e['after_before_ops_per_s_rounds'])} | "
                   f"{fmt_pct(e['baseline_ops_per_s_spread'])} | {fmt_pct(e['znoded_ops_per_s_spread'])} | "
                   f"{fmt(e['baseline_p99_us'])} | {fmt(e['znoded_p99_us'])} | "
                   f"{fmt_ratio(e['after_before_p99_us'])} | {fmt_range(e['after_before_p99_us_rounds'])} |")
    if summary["same_load"]:
        out += ["", "At the same load (as above): p99 after/before", "",
                f"| topology | workload | rate ops/s | p99 us {lb} | p99 us after | p99 after/before | "
                f"per round | spread {lb} | spread after |", "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
        for e in summary["same_load"]:
            out.append(f"| {e['topology']} | {e['workload']} | {fmt(e['znoded_rate'])} | "
                       f"{fmt(e['baseline_p99_us'])} | {fmt(e['znoded_p99_us'])} | "
                       f"{fmt_ratio(e['after_before_p99_us'])} | {fmt_range(e['after_before_p99_us_rounds'])} | "
                       f"{fmt_pct(e['baseline_p99_us_spread'])} | {fmt_pct(e['znoded_p99_us_spread'])} |")
    return out


def scale_find(summary, topo, size, target, kind, tree=None, workload=None):
    return next((r for r in summary["scale"] if r["topology"] == topo and r["znodes"] == size
                 and r["target"] == target and r["kind"] == kind
                 and (tree is None or r.get("tree") == tree)
                 and (workload is None or r.get("workload") == workload)), {})


def scale_report(summary):
    """The Markdown sections of the scale phase (one run per size, topology and server)."""
    keys = []
    for r in summary["scale"]:
        if (r["topology"], r["znodes"]) not in keys:
            keys.append((r["topology"], r["znodes"]))
    out = ["", "## Scale: set and create on the empty tree and with N znodes of 100 bytes "
               "(one run each, each server fresh; ratio = znodefs / ZooKeeper; with N/empty: "
               "that server's ops/s with the N znodes over its own on the empty tree)", "",
           "One run per size, topology and server (not the rounds and medians of the throughput "
           "phase): the throughput phase's unrecorded warmup, then each workload for "
           f"{summary['meta']['duration_s']} s after {summary['meta']['warmup_s']} s warmup, on "
           "the empty tree and again after N znodes were created; load: the 1-minute load "
           "average as each measurement ended.", "",
           "| topology | znodes | workload | tree | ops/s zn | ops/s ZK | ratio | with N/empty zn | "
           "with N/empty ZK | p50 us zn | p50 us ZK | p99 us zn | p99 us ZK | p999 us zn | "
           "p999 us ZK | load 1m zn/ZK |", "|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for topo, size in keys:
        for wl in ("set", "create"):
            for tree in ("empty", "full"):
                zn = scale_find(summary, topo, size, "znoded", "throughput", tree, wl)
                zk = scale_find(summary, topo, size, "zookeeper", "throughput", tree, wl)
                if not zn and not zk:
                    continue
                grow = {}
                for t, e in (("zn", zn), ("zk", zk)):
                    empty = scale_find(summary, topo, size, e.get("target"), "throughput", "empty", wl)
                    grow[t] = ratio(e.get("ops_per_s"), empty.get("ops_per_s")) if tree == "full" and e else None
                out.append(f"| {topo} | {fmt(size)} | {wl} | {'empty' if tree == 'empty' else 'with N'} | "
                           f"{fmt(zn.get('ops_per_s'))} | {fmt(zk.get('ops_per_s'))} | "
                           f"{fmt_ratio(ratio(zn.get('ops_per_s'), zk.get('ops_per_s')))} | "
                           f"{fmt_ratio(grow['zn'])} | {fmt_ratio(grow['zk'])} | "
                           + " | ".join(f"{fmt(zn.get(k))} | {fmt(zk.get(k))}"
                                        for k in ("p50_us", "p99_us", "p999_us"))
                           + f" | {zn.get('loadavg_1m', '-')}/{zk.get('loadavg_1m', '-')} |")
    out += ["", "## Scale: memory, watches, sessions and restart (RSS of the largest member, "
                "ZooKeeper's after jcmd GC.run; bytes per znode: the RSS the N znodes added, less "
                "their paths and data, over N; ZK heap: the same from ZooKeeper's heap used after "
                "the GC instead of its RSS, which follows the heap the JVM committed; per watch "
                "and per session: the RssAnon delta (resident memory allocated, without the file "
                "pages a server maps), each side read once it settled; watches: 100k exists "
                "watches (fewer below 400k znodes) on populated znodes from one session; sessions: "
                "2,000 held open; restart: process start to the first getData, median; load: as "
                "the restarts ended)", "",
            "| topology | znodes | RSS zn | RSS ZK | ratio | ZK heap used | bytes/znode zn | "
            "bytes/znode ZK | ZK heap | bytes/watch zn | bytes/watch ZK | ZK heap | "
            "bytes/session zn | bytes/session ZK | ZK heap | restart s zn | restart s ZK | ratio | "
            "load 1m zn/ZK |", "|---|--:|" + "--:|" * 17]
    notes = []
    for topo, size in keys:
        cells = {}
        for t in ("znoded", "zookeeper"):
            mem = scale_find(summary, topo, size, t, "memory")
            watch = scale_find(summary, topo, size, t, "watch")
            session = scale_find(summary, topo, size, t, "session")
            cells[t] = (mem.get("rss_kib"), mem.get("bytes_per_znode"), watch.get("bytes_per_item"),
                        session.get("bytes_per_item"),
                        scale_find(summary, topo, size, t, "restart").get("median_s"),
                        scale_find(summary, topo, size, t, "restart").get("loadavg_1m", "-"),
                        mem.get("heap_used_after_gc_kib"), mem.get("heap_bytes_per_znode"),
                        watch.get("heap_bytes_per_item"), session.get("heap_bytes_per_item"))
            for kind in ("skipped", "failed"):
                r = scale_find(summary, topo, size, t, kind)
                if r:
                    held = [m["znodes"] for m in summary["scale"] if m["topology"] == topo
                            and m["target"] == t and m["kind"] == "memory" and m["znodes"] < size]
                    notes.append(f"- {LABEL[t]}, {topo}, {size:,} znodes: {r['reason']}"
                                 + (f"; its figures at the largest size it held, {max(held):,} "
                                    "znodes, are in that size's rows." if held else "."))
        zn, zk = cells["znoded"], cells["zookeeper"]
        mib = lambda k: "-" if k is None else f"{k / 1024:,.1f} MiB"
        out.append(f"| {topo} | {fmt(size)} | {mib(zn[0])} | {mib(zk[0])} | "
                   f"{fmt_ratio(ratio(zn[0], zk[0]))} | {mib(zk[6])} | {fmt(zn[1])} | {fmt(zk[1])} | "
                   f"{fmt(zk[7])} | {fmt(zn[2])} | {fmt(zk[2])} | {fmt(zk[8])} | {fmt(zn[3])} | "
                   f"{fmt(zk[3])} | {fmt(zk[9])} | "
                   f"{fmt(zn[4], 3)} | {fmt(zk[4], 3)} | {fmt_ratio(ratio(zn[4], zk[4]))} | "
                   f"{zn[5]}/{zk[5]} |")
    return out + ([""] + notes if notes else [])


def write_reports(summary, name):
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(RESULTS, f"{name}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        # with a baseline: its figure and this build's over it (after/before) as two more columns
        extra = [f"znodefs {BASELINE['label']}", "after/before"] if BASELINE else []
        w.writerow(["phase", "topology", "workload", "metric", "znodefs", "zookeeper", "ratio"] + extra)
        for phase in ("throughput", "same_load"):
            for e in summary[phase]:
                for k in ("ops_per_s", "p50_us", "p99_us", "p999_us"):
                    w.writerow([phase, e["topology"], e["workload"], k, e[f"znoded_{k}"],
                                e[f"zookeeper_{k}"],
                                ratio(e[f"znoded_{k}"], e[f"zookeeper_{k}"])]
                               + ([e[f"baseline_{k}"], ratio(e[f"znoded_{k}"], e[f"baseline_{k}"])]
                                  if BASELINE else []))
        for m in summary["memory"]:
            w.writerow(["memory", m["topology"], f"{m['znodes']} znodes", "rss_kib",
                        m["rss_kib"] if m["target"] == "znoded" else "",
                        m["rss_kib"] if m["target"] == "zookeeper" else "", ""])
        for m in summary["restart"]:
            w.writerow(["restart", m["topology"], f"{m['znodes']} znodes", "seconds",
                        m["median_s"] if m["target"] == "znoded" else "",
                        m["median_s"] if m["target"] == "zookeeper" else "", ""])
        for m in summary["mount"]:
            w.writerow(["mount", "standalone", m["operation"], "p50_us", m["mount_p50_us"],
                        "", ratio(m["mount_p50_us"], m["client_p50_us"])])
        for e in summary["tls"]:
            for transport in ("plain", "tls"):
                for k in ("ops_per_s", "p50_us", "p99_us"):
                    w.writerow(["tls", e["topology"], f"{e['workload']} {transport}", k,
                                e[f"znoded_{transport}_{k}"], e[f"zookeeper_{transport}_{k}"],
                                ratio(e[f"znoded_{transport}_{k}"], e[f"zookeeper_{transport}_{k}"])])
        scale_metrics = {"throughput": ("ops_per_s", "p50_us", "p99_us", "p999_us"),
                         "memory": ("rss_kib", "bytes_per_znode"), "watch": ("bytes_per_item",),
                         "session": ("bytes_per_item",), "restart": ("median_s",)}
        done = set()
        for r in summary.get("scale", []):
            key = (r["topology"], r["znodes"], r["kind"], r.get("tree"), r.get("workload"))
            if r["kind"] not in scale_metrics or key in done:
                continue
            done.add(key)
            what = f"{r['znodes']} znodes {r['kind']}" + (
                f" {r['workload']} {r['tree']}" if r["kind"] == "throughput" else "")
            for k in scale_metrics[r["kind"]]:
                zn, zk = (scale_find(summary, *key[:2], t, r["kind"], r.get("tree"),
                                     r.get("workload")).get(k) for t in ("znoded", "zookeeper"))
                w.writerow(["scale", r["topology"], what, k, zn, zk, ratio(zn, zk)])
    meta = summary["meta"]
    out = [f"# znodefs vs Apache ZooKeeper: {meta['date']}", "",
           f"Machine: {meta['machine']}. ZooKeeper {meta['zookeeper_version']} "
           f"(JVM flags `{ZK_JVM_FLAGS}`, G1), znoded at commit {meta['commit']}"
           + (f" and, as the baseline \"{BASELINE['label']}\", znoded at commit {BASELINE['commit']} "
              f"(`{BASELINE['build']}`)" if BASELINE else "") + ". "
           f"Mode: {meta['mode']}, {meta['repeats']} rounds interleaved (ZooKeeper, "
           + (f"znodefs {BASELINE['label']}, " if BASELINE else "") + "znodefs, ...), "
           f"{meta['duration_s']} s measured per workload after {meta['warmup_s']} s warmup "
           f"(and {meta['server_warmup_s']} s of unrecorded mixed load after each server start); "
           "figures are medians over rounds. Both servers: same zoo.cfg (tickTime=2000, "
           "forceSync=yes, data and log on the same ext4 disk), fresh data directory each round. "
           "Load: bench/zn_bench, 1 thread, 8 sessions x 16 outstanding (watch: 1 writer, "
           "50 watchers; session: 8 concurrent connect+close cycles), 100-byte values; on the "
           "same 2 cores as the servers.", "",
           f"Reproduce: `{meta['command']}` (raw data: `{meta['runs_file']}`).", "",
           *([f"Load average (1 min) of the shared machine as each measurement ended: "
              f"min {summary['loadavg_1m']['min']}, median {summary['loadavg_1m']['median']}, "
              f"max {summary['loadavg_1m']['max']} (the servers under test and zn_bench "
              "count in it; per-measurement values in the raw data).", ""]
             if summary.get("loadavg_1m") else []),
           "## Throughput and latency (ratio = znodefs / ZooKeeper; >1 is better for ops/s, "
           "<1 is better for latency)", "",
           "| topology | workload | ops/s znodefs | ops/s ZooKeeper | ratio | p50 us zn | p50 us ZK "
           "| p99 us zn | p99 us ZK | p99 ratio | p999 us zn | p999 us ZK |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    head = len(out) - 5  # where the throughput section starts
    for e in summary["throughput"]:
        out.append(f"| {e['topology']} | {e['workload']} | {fmt(e['znoded_ops_per_s'])} | "
                   f"{fmt(e['zookeeper_ops_per_s'])} | {fmt_ratio(e['ops_ratio'])} | "
                   f"{fmt(e['znoded_p50_us'])} | {fmt(e['zookeeper_p50_us'])} | "
                   f"{fmt(e['znoded_p99_us'])} | {fmt(e['zookeeper_p99_us'])} | "
                   f"{fmt_ratio(e['p99_us_ratio'])} | {fmt(e['znoded_p999_us'])} | "
                   f"{fmt(e['zookeeper_p999_us'])} |")
    out += ["", f"## Latency at the same load ({int(SAME_LOAD_FRACTION * 100)}% of ZooKeeper's "
                "throughput in the same round, paced with --rate)", "",
            "| topology | workload | rate ops/s | p50 us zn | p50 us ZK | p99 us zn | p99 us ZK | "
            "p99 ratio | p999 us zn | p999 us ZK |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for e in summary["same_load"]:
        out.append(f"| {e['topology']} | {e['workload']} | {fmt(e['znoded_rate'])} | "
                   f"{fmt(e['znoded_p50_us'])} | {fmt(e['zookeeper_p50_us'])} | "
                   f"{fmt(e['znoded_p99_us'])} | {fmt(e['zookeeper_p99_us'])} | "
                   f"{fmt_ratio(e['p99_us_ratio'])} | {fmt(e['znoded_p999_us'])} | "
                   f"{fmt(e['zookeeper_p999_us'])} |")
    if "scale" in summary and not summary["throughput"] and not summary["same_load"]:
        del out[head:]  # a scale run without the throughput phase: no empty tables
    if BASELINE:
        out += after_before_report(summary)
    if summary["memory"]:
        out += ["", "## Memory: RSS with 100-byte znodes (largest member; ZooKeeper after "
                    "jcmd GC.run)", "",
                "| topology | znodes | RSS znodefs | RSS ZooKeeper | ratio | empty RSS zn | "
                "empty RSS ZK | ZK heap used after GC |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for topo in sorted({m["topology"] for m in summary["memory"]}, reverse=True):
            zn = next((m for m in summary["memory"] if m["topology"] == topo and m["target"] == "znoded"), {})
            zk = next((m for m in summary["memory"] if m["topology"] == topo and m["target"] == "zookeeper"), {})
            mib = lambda k: None if k is None else k / 1024
            out.append(f"| {topo} | {fmt(zn.get('znodes') or zk.get('znodes'))} | "
                       f"{fmt(mib(zn.get('rss_kib')), 1)} MiB | {fmt(mib(zk.get('rss_kib')), 1)} MiB | "
                       f"{fmt_ratio(ratio(zn.get('rss_kib'), zk.get('rss_kib')))} | "
                       f"{fmt(mib(zn.get('rss_empty_kib')), 1)} MiB | {fmt(mib(zk.get('rss_empty_kib')), 1)} MiB | "
                       f"{fmt(mib(zk.get('heap_used_after_gc_kib')), 1)} MiB |")
    if summary["restart"]:
        out += ["", "## Start to serving: process start to the first successful getData", "",
                "| topology | znodes | znodefs s | ZooKeeper s | ratio |", "|---|--:|--:|--:|--:|"]
        keys = []
        for m in summary["restart"]:
            if (m["topology"], m["znodes"]) not in keys:
                keys.append((m["topology"], m["znodes"]))
        for topo, size in keys:
            zn = next((m for m in summary["restart"] if m["topology"] == topo and m["znodes"] == size and m["target"] == "znoded"), {})
            zk = next((m for m in summary["restart"] if m["topology"] == topo and m["znodes"] == size and m["target"] == "zookeeper"), {})
            out.append(f"| {topo} | {fmt(size)} | {fmt(zn.get('median_s'), 3)} | "
                       f"{fmt(zk.get('median_s'), 3)} | "
                       f"{fmt_ratio(ratio(zn.get('median_s'), zk.get('median_s')))} |")
    if summary["mount"]:
        out += ["", "## The mount beside libznode and the CLI (standalone znoded, latency in us)", "",
                "| operation | through the mount | p50 | p99 | through the client | p50 | p99 | "
                "mount/client p50 |", "|---|---|--:|--:|---|--:|--:|--:|"]
        for m in summary["mount"]:
            out.append(f"| {m['operation']} | {m['mount_how']} | {fmt(m['mount_p50_us'])} | "
                       f"{fmt(m['mount_p99_us'])} | {m['client_how']} | {fmt(m['client_p50_us'])} | "
                       f"{fmt(m['client_p99_us'])} | "
                       f"{fmt_ratio(ratio(m['mount_p50_us'], m['client_p50_us']))} |")
    if summary["tls"]:
        out += ["", "## TLS: get and set over TLS beside plain on the same server (secureClientPort "
                    "and clientPort; ZooKeeper's Netty connection layer for both; ssl.clientAuth=need, "
                    "RSA 2048 keys; TLS/plain = that server's TLS throughput over its plain one)", "",
                "| topology | workload | ops/s zn plain | ops/s zn TLS | zn TLS/plain | "
                "ops/s ZK plain | ops/s ZK TLS | ZK TLS/plain | TLS ops ratio | p99 us zn TLS | "
                "p99 us ZK TLS |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for e in summary["tls"]:
            out.append(f"| {e['topology']} | {e['workload']} | {fmt(e['znoded_plain_ops_per_s'])} | "
                       f"{fmt(e['znoded_tls_ops_per_s'])} | {fmt_ratio(e['znoded_tls_over_plain'])} | "
                       f"{fmt(e['zookeeper_plain_ops_per_s'])} | {fmt(e['zookeeper_tls_ops_per_s'])} | "
                       f"{fmt_ratio(e['zookeeper_tls_over_plain'])} | {fmt_ratio(e['tls_ops_ratio'])} | "
                       f"{fmt(e['znoded_tls_p99_us'])} | {fmt(e['zookeeper_tls_p99_us'])} |")
    if "scale" in summary:
        out += scale_report(summary)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("\n".join(out) + "\n")
