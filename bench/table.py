#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into the table of docs/PERFORMANCE.md.

    bench/table.py RESULTS            print the table
    bench/table.py --check RESULTS    exit 1 unless every scenario produced its figures

RESULTS has one line per generator run: "<name> RESULT key=value ...", name one of rt,
nchan-r (Nchan, Redis store), nchan-m (Nchan, memory store), floor, wrk, redis.
"""
import sys

COLS = [("rt", "rt"), ("nchan-r", "Nchan redis"), ("nchan-m", "Nchan memory")]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[1] != "RESULT":
                continue
            kv = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            kv["name"] = parts[0]
            rows.append(kv)
    return rows


def find(rows, name, mode, **match):
    """The run of `name` in `mode`; with several rounds (fan-out), the median by max_ms."""
    match.setdefault("tag", None)  # tagged runs (e.g. "many" connections) only when asked for
    hits = [r for r in rows if r["name"] == name and r.get("mode") == mode and "failed" not in r and
            all(r.get(k) == (None if v is None else str(v)) for k, v in match.items())]
    if not hits:
        return None
    if len(hits) > 1 and all("max_ms" in r for r in hits):
        hits.sort(key=lambda r: float(r["max_ms"]))
    return hits[(len(hits) - 1) // 2]


def fig(rows, name, mode, key, **match):
    r = find(rows, name, mode, **match)
    if r is None or key not in r:
        return None
    try:
        return float(r[key])
    except ValueError:
        return None


def scenarios(rows):
    """(label, unit, better, key per column, floor value or None)."""
    out = []

    def add(label, unit, better, mode, key, floor=None, **match):
        vals = {n: fig(rows, n, mode, key, **match) for n, _ in COLS}
        out.append((label, unit, better, vals, floor))

    catchup_conns = (find(rows, "rt", "catchup") or find(rows, "nchan-r", "catchup") or {}).get("conns", "?")
    add(f"catch-up polls/s ({catchup_conns} conns)", "req/s", "higher", "catchup", "rps",
        fig(rows, "floor", "plain", "rps"))
    add("catch-up p50", "ms", "lower", "catchup", "p50_ms", fig(rows, "floor", "plain", "p50_ms"))
    add("catch-up p99", "ms", "lower", "catchup", "p99_ms", fig(rows, "floor", "plain", "p99_ms"))
    add("catch-up CPU per poll (server + Redis)", "us", "lower", "catchup", "cpu_us_per_req",
        fig(rows, "floor", "plain", "cpu_us_per_req"))
    many = find(rows, "rt", "catchup", tag="many") or find(rows, "nchan-r", "catchup", tag="many")
    if many:
        mc = many.get("conns", "?")
        add(f"catch-up polls/s ({mc} conns)", "req/s", "higher", "catchup", "rps",
            fig(rows, "floor", "plain", "rps", tag="many"), tag="many")
        add(f"catch-up p99 ({mc} conns)", "ms", "lower", "catchup", "p99_ms",
            fig(rows, "floor", "plain", "p99_ms", tag="many"), tag="many")
        add(f"catch-up CPU per poll ({mc} conns)", "us", "lower", "catchup", "cpu_us_per_req",
            fig(rows, "floor", "plain", "cpu_us_per_req", tag="many"), tag="many")
    pub_conns = (find(rows, "rt", "publish") or find(rows, "nchan-r", "publish") or {}).get("conns", "?")
    add(f"publish over HTTP ({pub_conns} conns)", "pub/s", "higher", "publish", "rps",
        fig(rows, "redis", "publish_script", "rps"))
    add("publish p50", "ms", "lower", "publish", "p50_ms")
    add("publish p99", "ms", "lower", "publish", "p99_ms")
    add("publish CPU per publish (server + Redis)", "us", "lower", "publish", "cpu_us_per_req")
    mu_conns = (find(rows, "rt", "multi") or find(rows, "nchan-r", "multi") or {}).get("conns", "?")
    add(f"200-channel poll, answered at once ({mu_conns} conns)", "req/s", "higher", "multi", "rps")
    add("200-channel poll p50", "ms", "lower", "multi", "p50_ms")
    add("200-channel poll p99", "ms", "lower", "multi", "p99_ms")
    add("200-channel poll CPU per poll (server + Redis)", "us", "lower", "multi", "cpu_us_per_req")
    mf = find(rows, "rt", "multi-fanout") or find(rows, "nchan-r", "multi-fanout")
    if mf:
        rounds = max(len([r for r in rows if r["name"] == c and r.get("mode") == "multi-fanout" and "tag" not in r])
                     for c, _ in COLS)
        label = f"{int(mf['n']):,} held 200-channel polls, publish to one channel" + \
            (f" (median of {rounds})" if rounds > 1 else "")
        add(label + ": p50", "ms", "lower", "multi-fanout", "p50_ms")
        add(label + ": all answered", "ms", "lower", "multi-fanout", "max_ms")
        add(label + ": server CPU per answer", "us", "lower", "multi-fanout", "cpu_us_per_answer")
        add(f"memory per held 200-channel poll (PSS, {int(mf['n']):,} polls)", "bytes", "lower", "multi-fanout",
            "mem_pss_per_poll", tag="fresh")
    ns = sorted({int(r["n"]) for r in rows if r.get("mode") == "fanout" and "n" in r})
    # fan-out rows: "fan-out to 10k" = one publish to a channel with 10,000 held polls
    for n in ns:
        rounds = max(len([r for r in rows if r["name"] == c and r.get("mode") == "fanout" and r.get("n") == str(n)])
                     for c, _ in COLS)
        label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        if rounds > 1:
            label += f" (median of {rounds})"
        add(f"fan-out to {label} p50", "ms", "lower", "fanout", "p50_ms", n=n)
        add(f"fan-out to {label} p99", "ms", "lower", "fanout", "p99_ms", n=n)
        add(f"fan-out to {label}: all answered", "ms", "lower", "fanout", "max_ms", n=n)
        add(f"fan-out to {label}: server CPU per answer", "us", "lower", "fanout", "cpu_us_per_answer", n=n)
    add("held polls", "polls", "higher", "held", "held")
    add("memory per held poll (PSS)", "bytes", "lower", "held", "mem_pss_per_poll")
    return out


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit in ("ms", "us"):
        return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def table(rows):
    head = ["scenario", "unit", "rt", "Nchan redis", "Nchan memory", "floor", "rt/Nchan redis"]
    lines = []
    for label, unit, better, vals, floor in scenarios(rows):
        rt, nr = vals["rt"], vals["nchan-r"]
        ratio = f"{rt / nr:.2f}x" if rt is not None and nr not in (None, 0) else "n/a"
        lines.append([label, unit, fmt(rt, unit), fmt(nr, unit), fmt(vals["nchan-m"], unit),
                      fmt(floor, unit) if floor is not None else "-", ratio + (" (lower is better)" if better == "lower" and ratio != "n/a" else "")])
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]
    text = []
    for i, row in enumerate([head] + lines):
        text.append("  ".join(str(c).ljust(widths[j]) if j == 0 or j == len(row) - 1 else str(c).rjust(widths[j])
                              for j, c in enumerate(row)).rstrip())
        if i == 0:
            text.append("  ".join("-" * w for w in widths))
    floor_names = ("floor: catch-up rows = nginx `return 200` of a fixed 60-byte JSON; "
                   "publish row = redis-benchmark EVALSHA of server/lua/publish.lua (50 clients)")
    text.append("")
    text.append(floor_names)
    rh = find(rows, "rt-http", "plain")
    if rh:
        text.append(f"rt's HTTP floor (rt answering a 400 with no poll or Redis work, {rh.get('conns')} conns): "
                    f"{float(rh['rps']):,.0f} req/s, {float(rh['cpu_us_per_req']):.1f} us CPU per request")
    zr = fig(rows, "redis", "zrange", "rps")
    lg, wrk = fig(rows, "floor", "plain", "rps"), fig(rows, "wrk", "plain", "rps")
    if zr is not None:
        text.append(f"Redis ZRANGEBYSCORE alone (redis-benchmark, 50 clients): {zr:,.0f}/s")
    if lg is not None and wrk:
        lg_us, wrk_us = fig(rows, "floor", "plain", "gen_us_per_req"), fig(rows, "wrk", "plain", "gen_us_per_req")
        cost = f"; generator CPU per request {lg_us:.1f} us vs wrk {wrk_us:.1f} us" if lg_us and wrk_us else ""
        text.append(f"generator check on the nginx floor: rt-loadgen {lg:,.0f} req/s, wrk -t2 {wrk:,.0f} req/s "
                    f"({lg / wrk:.2f}x){cost}")
    cpu = []
    for n, title in COLS:
        r = find(rows, n, "catchup")
        if r:
            cpu.append(f"{title}: server {r.get('server_cpu_pct')}% / generator {r.get('gen_cpu_pct')}% CPU")
    if cpu:
        text.append("catch-up CPU (100% = one core): " + "; ".join(cpu))
    failed = [f"{r['name']} {r.get('mode')}" for r in rows if "failed" in r]
    if failed:
        text.append("FAILED: " + ", ".join(failed))
    text.append("")
    text.extend(goals(rows))
    return "\n".join(text)


def goals(rows):
    """The goals of the performance issue (issue 10), each with this run's figure and met / NOT met."""
    out = ["goals (this run):"]

    def line(what, value, target, ok):
        if value is None:
            out.append(f"  {what}: n/a (target {target})")
        else:
            out.append(f"  {what}: {value} (target {target}) {'met' if ok else 'NOT met'}")

    def ratio(a, b):
        return None if a is None or b in (None, 0) else a / b

    def paired(a, b, key):
        """The median ratio a/b over the interleaved pairs (tag pairN) of run.sh, and the
        ratios themselves; (None, []) when the run has no complete pair."""
        rs = []
        tags = sorted({r["tag"] for r in rows if r.get("tag", "").startswith("pair")})
        for t in tags:
            x = ratio(fig(rows, a[0], a[1], key, tag=t), fig(rows, b[0], b[1], key, tag=t))
            if x is not None:
                rs.append(x)
        if not rs:
            return None, []
        s = sorted(rs)
        mid = len(s) // 2
        return (s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2), rs

    def pair_text(r, rs):
        if not rs:
            return r and f"{r:.2f}x"
        return f"{r:.2f}x, median of {len(rs)} interleaved pairs: " + ", ".join(f"{x:.2f}" for x in rs)

    # Issue 10: the cost of the chosen stack (evhttp), measured against rt's own HTTP floor
    # (rt on evhttp answering a 400 with no poll or Redis work, same run) and Nchan.
    rt, nr = fig(rows, "rt", "catchup", "rps"), fig(rows, "nchan-r", "catchup", "rps")
    r, rs = paired(("rt", "catchup"), ("rt-http", "plain"), "rps")
    if r is None:
        r = ratio(rt, fig(rows, "rt-http", "plain", "rps"))
    rn = ratio(rt, nr)
    beside = f" (rt/Nchan {rn:.2f}x)" if rn is not None else ""
    line("catch-up polls/s vs rt's own HTTP floor" + beside, pair_text(r, rs), ">= 0.9x", r is not None and r >= 0.9)
    r = ratio(fig(rows, "rt", "fanout", "max_ms", n=10000), fig(rows, "nchan-r", "fanout", "max_ms", n=10000))
    line("fan-out to 10k, time until all answered vs Nchan", r and f"{r:.2f}x", "<= 1.0x", r is not None and r <= 1.0)
    rp = fig(rows, "rt", "publish", "rps")
    r = ratio(rp, fig(rows, "nchan-r", "publish", "rps"))
    line("publish over HTTP vs Nchan", r and f"{r:.2f}x", ">= 1.5x", r is not None and r >= 1.5)
    r = ratio(rp, fig(rows, "redis", "publish_script", "rps"))
    line("publish over HTTP vs the Redis script floor", r and f"{r:.2f}x", ">= 0.7x", r is not None and r >= 0.7)
    r, rs = paired(("rt", "multi"), ("nchan-r", "multi"), "rps")
    if r is None:
        r = ratio(fig(rows, "rt", "multi", "rps"), fig(rows, "nchan-r", "multi", "rps"))
    line("200-channel poll answered at once vs Nchan", pair_text(r, rs), ">= 2x", r is not None and r >= 2)
    r = ratio(fig(rows, "rt", "held", "mem_pss_per_poll"), fig(rows, "nchan-r", "held", "mem_pss_per_poll"))
    line("memory per held poll vs Nchan", r and f"{r:.2f}x", "<= 0.5x", r is not None and r <= 0.5)
    h = find(rows, "rt", "held")
    held = int(h["held"]) if h and "held" in h else None
    line("held polls", held and f"{held:,}", ">= 50,000", held is not None and held >= 50000)
    return out


def check(rows):
    """Every scenario of every target that ran produced its figures."""
    problems = []
    names = sorted({r["name"] for r in rows if r["name"] in dict(COLS)})
    if not names:
        problems.append("no target produced results")
    for n in names:
        for mode in ("catchup", "publish", "multi"):
            r = find(rows, n, mode)
            if r is None or float(r.get("rps", 0)) <= 0 or int(r.get("non2xx", 1)) != 0:
                problems.append(f"{n} {mode}: no figure or error answers ({r})")
        for mode in ("fanout", "multi-fanout"):
            fo = [r for r in rows if r["name"] == n and r.get("mode") == mode and "tag" not in r]
            if not fo or any("failed" in r or r.get("answered") != r.get("n") for r in fo):
                problems.append(f"{n} {mode}: not every poll answered ({fo})")
        h = find(rows, n, "held")
        if h is None or h.get("held") != h.get("n") or h.get("mem_pss_per_poll") is None:
            problems.append(f"{n} held: not every poll held ({h})")
    if fig(rows, "floor", "plain", "rps") in (None, 0):
        problems.append("nginx floor: no figure")
    for p in problems:
        print("bench-smoke: " + p, file=sys.stderr)
    if not problems:
        print("bench-smoke: every scenario produced its figures")
    return 1 if problems else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        return check(load(argv[2]))
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(table(load(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
