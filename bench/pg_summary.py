#!/usr/bin/env python3
"""Turns the raw CSV of `make bench_pg` (scripts/bench.sh) into summary.md.

Usage: pg_summary.py OUT_DIR   (reads OUT_DIR/results.csv, idle.csv, meta.txt; prints markdown)

Every figure is the median over the rounds whose pgbench run succeeded (exit 0, no failed
transactions, at least one transaction); runs that did not are listed under "Problems".
"""
import csv
import re
import statistics
import sys
from pathlib import Path

TARGETS = ("odyssey", "pgbouncer", "direct")
SCENARIOS = (
    ("sel_simple", "select-only, simple protocol, 50 clients"),
    ("sel_ext", "select-only, extended protocol, 50 clients"),
    ("tpcb", "tpcb-like, 50 clients"),
    ("storm_scram", "login storm (-C), SCRAM, 20 clients"),
    ("storm_md5", "login storm (-C), MD5, 20 clients"),
    ("storm_authq", "login storm (-C), SCRAM, verifier from auth_query, 20 clients"),
    ("sel_prep", "select-only, prepared statements, 50 clients"),
    ("sel_sqlprep", "select-only, SQL PREPARE/EXECUTE, 50 clients"),
    ("sel_c20", "select-only, simple protocol, 20 clients"),
    ("sel_many", "select-only, simple protocol, 1,000 clients over the pool of 20"),
    ("tls_sel", "TLS both sides, select-only, simple protocol, 50 clients"),
    ("tls_storm", "TLS both sides, login storm (-C), SCRAM, 20 clients"),
    ("tls_large", "TLS both sides, a 100 MB result per transaction, 4 clients"),
)
# The CPU goals of issue 16: (scenario, goal), ours / PgBouncer's CPU µs per transaction.
CPU_GOALS = (
    ("sel_simple", "<= 0.6"),
    ("sel_ext", "<= 0.6"),
    ("tpcb", "<= 0.7"),
    ("sel_many", "<= 0.7"),
    ("storm_scram", "<= 0.6"),
    ("storm_md5", "<= 0.4"),
)
# The TLS goals of issue 10: (scenario, column, goal, what), ours / PgBouncer's.
TLS_GOALS = (
    ("tls_sel", "tps", ">= 1.2", "select-only TPS"),
    ("tls_storm", "cpu_us_per_txn", "<= 0.7", "pooler CPU per TLS login"),
    ("tls_large", "tps", ">= 1.0", "large-result throughput"),
)


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def main():
    out = Path(sys.argv[1])
    rows = list(csv.DictReader(open(out / "results.csv")))
    idle = list(csv.DictReader(open(out / "idle.csv"))) if (out / "idle.csv").exists() else []
    lat_rows = list(csv.DictReader(open(out / "latency.csv"))) if (out / "latency.csv").exists() else []
    meta = (out / "meta.txt").read_text() if (out / "meta.txt").exists() else ""

    good = lambda r: r["rc"] == "0" and r["failed"] == "0" and int(r["txns"] or 0) > 0
    problems = [r for r in rows if not good(r)]

    def med(sc, tg, col):
        vals = [num(r[col]) for r in rows if r["scenario"] == sc and r["target"] == tg and good(r)]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    p = print
    p("# `make bench_pg` summary\n")
    p("```\n" + meta.strip() + "\n```\n")
    p("Medians over rounds. TPS and latency are pgbench's (latency average, ms). CPU µs/txn is the")
    p("pooler process's utime+stime during the run divided by the transactions pgbench processed.\n")
    p("| scenario | odyssey TPS | pgbouncer TPS | direct TPS | odyssey lat | pgbouncer lat | direct lat "
      "| odyssey CPU µs/txn | pgbouncer CPU µs/txn | ody/pgb TPS | ody/pgb CPU | ody/direct TPS |")
    p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for sc, what in SCENARIOS:
        if not any(r["scenario"] == sc for r in rows):
            continue
        tps = {t: med(sc, t, "tps") for t in TARGETS}
        lat = {t: med(sc, t, "lat_ms") for t in TARGETS}
        cpu = {t: med(sc, t, "cpu_us_per_txn") for t in TARGETS[:2]}
        p(f"| {sc} ({what}) | {fmt(tps['odyssey'])} | {fmt(tps['pgbouncer'])} | {fmt(tps['direct'])} "
          f"| {fmt(lat['odyssey'], 2)} | {fmt(lat['pgbouncer'], 2)} | {fmt(lat['direct'], 2)} "
          f"| {fmt(cpu['odyssey'], 1)} | {fmt(cpu['pgbouncer'], 1)} "
          f"| {ratio(tps['odyssey'], tps['pgbouncer'])} | {ratio(cpu['odyssey'], cpu['pgbouncer'])} "
          f"| {ratio(tps['odyssey'], tps['direct'])} |")
    p("")
    goals = [(sc, goal) for sc, goal in CPU_GOALS if any(r["scenario"] == sc for r in rows)]
    if goals:
        p("Pooler CPU per transaction, odyssey / PgBouncer (issue 16's goals): " + ", ".join(
            f"{sc} **{ratio(med(sc, 'odyssey', 'cpu_us_per_txn'), med(sc, 'pgbouncer', 'cpu_us_per_txn'))}**"
            f" ({goal})" for sc, goal in goals) + "\n")
    if any(r.get("kernel_share") for r in rows):
        # The floor under the CPU goals: a pooler's kernel time per transaction.
        p("Share of each pooler's CPU spent in the kernel (stime / (utime + stime)), and PgBouncer's")
        p("kernel time per transaction next to the CPU a goal allows us:\n")
        p("| scenario | odyssey kernel share | pgbouncer kernel share | pgbouncer kernel µs/txn "
          "| goal's CPU µs/txn for odyssey |")
        p("|---|--:|--:|--:|--:|")
        goal_of = dict(CPU_GOALS)
        for sc, _ in SCENARIOS:
            ko, kp = med(sc, "odyssey", "kernel_share"), med(sc, "pgbouncer", "kernel_share")
            if ko is None and kp is None:
                continue
            cp = med(sc, "pgbouncer", "cpu_us_per_txn")
            kus = cp * kp if cp is not None and kp is not None else None
            g = goal_of.get(sc)
            allowed = cp * float(g.split()[1]) if g and cp is not None else None
            share = lambda v: "–" if v is None else f"{v * 100:.0f} %"
            p(f"| {sc} | {share(ko)} | {share(kp)} | {fmt(kus, 1)} | {fmt(allowed, 1)} |")
        p("")
    calls = list(csv.DictReader(open(out / "syscalls.csv"))) if (out / "syscalls.csv").exists() else []
    if calls:
        # BENCH_PERF=1: the pooler's system calls per transaction (perf stat), by call.
        p("System calls per transaction (BENCH_PERF=1; medians over rounds), by call; in parentheses")
        p("the pooler's context switches and its calls into libc's allocator per transaction:\n")
        txns = {(r["round"], r["scenario"], r["target"]): num(r["txns"]) for r in rows}
        for sc, what in SCENARIOS:
            for tg in ("odyssey", "baseline", "pgbouncer"):
                total = med(sc, tg, "syscalls_per_txn")
                if total is None:
                    continue
                per = {}
                for c in calls:
                    n = txns.get((c["round"], c["scenario"], c["target"]))
                    if c["scenario"] == sc and c["target"] == tg and n:
                        per.setdefault(c["syscall"], []).append(num(c["count"]) / n)
                parts = sorted(((statistics.median(v), k) for k, v in per.items()), reverse=True)
                p(f"- {sc} {tg}: **{total:.2f}** (" + ", ".join(
                    f"{k} {v:.2f}" for v, k in parts if v >= 0.01) + ")")
        p("")
    if lat_rows:
        p("## Many clients: latency percentiles (ms, medians over rounds)\n")
        p("| target | transactions | p50 | p99 | p99.9 | p99 / p50 |")
        p("|---|--:|--:|--:|--:|--:|")
        lat = {}
        for tg in sorted({r["target"] for r in lat_rows}):
            mine = [r for r in lat_rows if r["target"] == tg]
            m = {c: statistics.median(num(r[c]) for r in mine) for c in ("txns", "p50_ms", "p99_ms", "p999_ms")}
            lat[tg] = m
            p(f"| {tg} | {fmt(m['txns'])} | {fmt(m['p50_ms'], 1)} | {fmt(m['p99_ms'], 1)} "
              f"| {fmt(m['p999_ms'], 1)} | {ratio(m['p99_ms'], m['p50_ms'])} |")
        if "odyssey" in lat and "pgbouncer" in lat:
            p(f"\nodyssey / PgBouncer p99: **{ratio(lat['odyssey']['p99_ms'], lat['pgbouncer']['p99_ms'])}** "
              f"(goal < 1); odyssey p99 / p50: **{ratio(lat['odyssey']['p99_ms'], lat['odyssey']['p50_ms'])}** "
              f"(goal <= 2)")
        p("")
    if any(r["target"] == "baseline" for r in rows):
        # BENCH_BASELINE: another build of the pooler in the same rounds.
        p("| scenario | odyssey CPU µs/txn | baseline CPU µs/txn | pgbouncer CPU µs/txn "
          "| ody/pgb CPU | base/pgb CPU | ody/base CPU | ody/base TPS |")
        p("|---|--:|--:|--:|--:|--:|--:|--:|")
        for sc, what in SCENARIOS:
            if not any(r["scenario"] == sc for r in rows):
                continue
            cpu = {t: med(sc, t, "cpu_us_per_txn") for t in ("odyssey", "baseline", "pgbouncer")}
            tps = {t: med(sc, t, "tps") for t in ("odyssey", "baseline")}
            p(f"| {sc} | {fmt(cpu['odyssey'], 1)} | {fmt(cpu['baseline'], 1)} | {fmt(cpu['pgbouncer'], 1)} "
              f"| {ratio(cpu['odyssey'], cpu['pgbouncer'])} | {ratio(cpu['baseline'], cpu['pgbouncer'])} "
              f"| {ratio(cpu['odyssey'], cpu['baseline'])} | {ratio(tps['odyssey'], tps['baseline'])} |")
        p("")
    # 50 clients multiplexed over a pool of 20 against PostgreSQL serving 20 clients directly:
    # what the pooler costs at the concurrency the database actually sees.
    base = med("sel_c20", "direct", "tps")
    for tg in TARGETS[:2]:
        v = med("sel_simple", tg, "tps")
        p(f"- {tg} sel_simple (50 clients over a pool of 20) vs direct sel_c20 (20 clients): "
          f"{fmt(v)} / {fmt(base)} TPS = **{ratio(v, base)}**")
    aq, static = med("storm_authq", "odyssey", "cpu_us_per_txn"), med("storm_scram", "odyssey", "cpu_us_per_txn")
    if aq is not None:
        # Issue 12: a login whose verifier comes from auth_query (cached) next to one from the config.
        p(f"- odyssey CPU per login, storm_authq vs storm_scram: {fmt(aq, 1)} / {fmt(static, 1)} µs = "
          f"**{ratio(aq, static)}** (goal <= 1.2); PgBouncer's, which asks PostgreSQL at every login: "
          f"{fmt(med('storm_authq', 'pgbouncer', 'cpu_us_per_txn'), 1)} / "
          f"{fmt(med('storm_scram', 'pgbouncer', 'cpu_us_per_txn'), 1)} µs")
    sql, prep = med("sel_sqlprep", "odyssey", "tps"), med("sel_prep", "odyssey", "tps")
    if sql is not None:
        # Issue 18: SQL PREPARE/EXECUTE next to protocol-level prepared statements.
        p(f"- odyssey sel_sqlprep vs sel_prep: {fmt(sql)} / {fmt(prep)} TPS = "
          f"**{ratio(sql, prep)}** (goal >= 0.9)")
    p("")
    tls = [(sc, col, goal, what) for sc, col, goal, what in TLS_GOALS
           if any(r["scenario"] == sc for r in rows)]
    if tls:
        p("## TLS (odyssey / PgBouncer, same run)\n")
        for sc, col, goal, what in tls:
            p(f"- {what} ({sc}): **{ratio(med(sc, 'odyssey', col), med(sc, 'pgbouncer', col))}** "
              f"(goal {goal})")
        # What a pooler that took no CPU at all could reach: the machine's busy CPU per
        # transaction in PgBouncer's run, less PgBouncer's own, with every core busy.
        m, c = med("tls_sel", "pgbouncer", "machine_us_per_txn"), med("tls_sel", "pgbouncer", "cpu_us_per_txn")
        t, busy = med("tls_sel", "pgbouncer", "tps"), med("tls_sel", "pgbouncer", "machine_busy")
        cores = re.search(r"nproc (\d+)", meta)
        if None not in (m, c, t, busy) and cores and m > c:
            capacity = int(cores.group(1)) * 1e6  # CPU µs a second, every core busy
            top = capacity / (m - c)
            need = capacity / (1.2 * t) - (m - c)
            p(f"- tls_sel ceiling: in PgBouncer's run the machine was {busy * 100:.0f} % busy at "
              f"{fmt(m, 1)} CPU µs per transaction, {fmt(c, 1)} of them PgBouncer's; with every core "
              f"busy, a pooler using no CPU at all would reach **{top / t:.2f}x** PgBouncer's TPS, "
              f"and 1.2x needs {fmt(need, 1)} µs of pooler CPU per transaction or less (if the rest "
              f"of the machine's work per transaction stays as it was)")
        mb = med("tls_large", "odyssey", "tps")
        if mb is not None:
            p(f"- tls_large: odyssey {fmt(mb * 100)} MB/s, pgbouncer "
              f"{fmt((med('tls_large', 'pgbouncer', 'tps') or 0) * 100)} MB/s, direct "
              f"{fmt((med('tls_large', 'direct', 'tps') or 0) * 100)} MB/s")
        p("")

    if idle:
        p("## Memory per idle client\n")
        p("| pooler | clients ok | failed | RSS before (KiB) | RSS with clients (KiB) | RSS after close (KiB) "
          "| bytes per idle client |")
        p("|---|--:|--:|--:|--:|--:|--:|")
        per = {}
        for r in idle:
            per[r["target"]] = num(r["bytes_per_client"])
            p(f"| {r['target']} | {r['ok']} | {r['failed']} | {r['rss_before_kb']} | {r['rss_with_kb']} "
              f"| {r['rss_after_kb']} | {fmt(per[r['target']])} |")
        p(f"\nodyssey/pgbouncer bytes per idle client: **{ratio(per.get('odyssey'), per.get('pgbouncer'))}**")
        if "baseline" in per:
            p(f"odyssey/baseline bytes per idle client: **{ratio(per.get('odyssey'), per.get('baseline'))}**")
        rest = {r["target"]: num(r["rss_before_kb"]) for r in idle}
        n_of = {r["target"]: int(num(r["n"]) or 0) for r in idle}
        if per.get("odyssey") is not None:
            n = n_of.get("odyssey", 0)
            met = ("met" if per["odyssey"] <= 1536 else "not met") if n >= 15000 else \
                f"not judged: the goal is stated for 15,000 clients, this run held {n:,}"
            p(f"issue 16: bytes per idle client {fmt(per['odyssey'])} (goal <= 1,536 at 15,000 clients): {met}")
        if rest.get("odyssey") and rest.get("pgbouncer"):
            met = "met" if rest["odyssey"] <= rest["pgbouncer"] else "not met"
            p(f"issue 16: RSS at rest odyssey/pgbouncer {ratio(rest['odyssey'], rest['pgbouncer'])} "
              f"(goal <= 1.0): {met}")
        if "odyssey_tls" in per:
            p(f"odyssey/pgbouncer bytes per idle TLS client: "
              f"**{ratio(per.get('odyssey_tls'), per.get('pgbouncer_tls'))}**")
        p("")

    p("## Problems\n")
    if not problems:
        p("None: every pgbench run exited 0 with no failed transactions.")
    for r in problems:
        p(f"- round {r['round']} {r['scenario']} {r['target']}: exit {r['rc']}, {r['txns']} transactions, "
          f"{r['failed']} failed (see logs/r{r['round']}-{r['scenario']}-{r['target']}.txt)")
    for r in idle:
        if r["failed"] not in ("0", ""):
            p(f"- idle_mem {r['target']}: {r['failed']} of {r['n']} idle clients failed to log in")
    errors = (out / "log_errors.txt").read_text().strip() if (out / "log_errors.txt").exists() else ""
    p("\nPooler log lines at error/warning level (first 50): " + ("none." if not errors else ""))
    if errors:
        p("```\n" + errors + "\n```")


if __name__ == "__main__":
    main()
