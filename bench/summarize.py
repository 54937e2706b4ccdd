#!/usr/bin/env python3
"""bench/summarize.py -- turns bench/run's samples (raw.tsv) into
results.json, results.md and PNG plots (gnuplot), and optionally refreshes
the README's Performance section (between <!-- bench:begin --> and
<!-- bench:end -->).

Figures are medians over repeated runs with p25..p75 and min..max; ratios
are taken pair by pair (same round, same index), then their median.

SPDX-License-Identifier: MIT
"""
import argparse
import json
import math
import os
import re
import subprocess
from collections import defaultdict

S1_NAMES = {
    "plain": "plain connect+write",
    "ktfo": "kernel TFO by hand (TCP_FASTOPEN_CONNECT)",
    "api": "tfo_connect_send",
    "uv": "tfo_uv_connect",
    "curl": "curl",
    "curlshim": "curl + libtfo_preload.so",
    "curltfo": "curl --tcp-fastopen",
}
S2_NAMES = {
    "plain": "plain (no TFO)",
    "kernel": "kernel TFO alone",
    "api": "libtfo API (new process each)",
    "shim": "libtfo shim (new process each)",
}
# The program models of scenario 2, under the shim ("X") and without it
# ("X_plain").
LOOP_NAMES = {
    "curl": "curl (poll)",
    "https": "curl https (TLS 1.3)",
    "aio": "python asyncio (epoll)",
    "node": "node http.get (libuv)",
    "uv": "libuv program",
}


def fnum(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return None if math.isnan(v) else v


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None}
    r = lambda v: round(v, 4)
    return {"n": len(xs), "median": r(pct(xs, .5)), "p25": r(pct(xs, .25)),
            "p75": r(pct(xs, .75)), "min": r(min(xs)), "max": r(max(xs))}


def fmt(v, d=1):
    return "n/a" if v is None else f"{v:.{d}f}"


def fs(s, d=1, unit=""):
    """median (p25..p75)"""
    if not s or s.get("median") is None:
        return "n/a"
    if s["n"] == 1:
        return f"{fmt(s['median'], d)}{unit}"
    return f"{fmt(s['median'], d)}{unit} ({fmt(s['p25'], d)}..{fmt(s['p75'], d)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--cpu", default="")
    ap.add_argument("--nproc", default="")
    ap.add_argument("--broken-rtt", type=float, default=50)
    ap.add_argument("--seconds", default="")
    ap.add_argument("--readme", default="")
    a = ap.parse_args()

    s1 = defaultdict(dict)    # (rtt, method, kind) -> {(round, idx): ms}
    s2 = defaultdict(list)    # (mode, method) -> [(idx, ms, err)]
    s3 = defaultdict(dict)    # (metric, variant) -> {round: value}
    s5 = defaultdict(dict)    # the same, scenario 5
    s4 = defaultdict(dict)
    s6 = defaultdict(dict)    # (rtt, with|without) -> {(round, idx): ms}
    for line in open(a.raw):
        f = line.rstrip("\n").split("\t")
        if f[0] == "s1":
            s1[(float(f[1]), f[2], f[3])][(f[4], f[5])] = fnum(f[6])
        elif f[0] == "s2":
            s2[(f[1], f[2])].append((int(f[3]), fnum(f[4]), f[5]))
        elif f[0] == "s3":
            s3[(f[1], f[2])][f[3]] = fnum(f[4])
        elif f[0] == "s5":
            s5[(f[1], f[2])][f[3]] = fnum(f[4])
        elif f[0] == "s4":
            s4[(f[1], f[2])][f[3]] = fnum(f[4])
        elif f[0] == "s6":
            s6[(f[1], f[2])][(f[3], f[4])] = fnum(f[5])

    res = {"meta": {"quick": a.quick == "1", "kernel": a.kernel, "cpu": a.cpu,
                    "nproc": a.nproc, "seconds": a.seconds, "broken_rtt": a.broken_rtt,
                    "method": "median over repeated runs; p25..p75, min..max; "
                              "ratios pair by pair within one round"},
           "s1": {}, "s2": {}, "s3": {}, "s4": {}, "s5": {}, "s6": {},
           "targets": []}
    targets = res["targets"]

    def target(name, value, op, limit, why=""):
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        targets.append({"target": name, "value": value, "op": op, "limit": limit,
                        "met": met, "note": why})

    # --- scenario 1 ---------------------------------------------------
    rtts = sorted({k[0] for k in s1})
    for rtt in rtts:
        out = {}
        for m in S1_NAMES:
            d = {}
            for kind in ("first", "repeat"):
                cur = s1.get((rtt, m, kind), {})
                base = s1.get((rtt, "plain", kind), {})
                pairs = [cur[k] / base[k] for k in cur
                         if cur[k] is not None and base.get(k)]
                d[kind] = {"ms": stats(list(cur.values())),
                           "samples_ms": [cur[k] for k in sorted(cur)],
                           "x_plain": stats(pairs),
                           "x_rtt": stats([v / rtt for v in cur.values()
                                           if v is not None])}
            # curl under the shim against curl --tcp-fastopen, pair by pair
            if m == "curlshim":
                cur = s1.get((rtt, m, "repeat"), {})
                base = s1.get((rtt, "curltfo", "repeat"), {})
                d["repeat"]["x_curl_tfo"] = stats(
                    [cur[k] / base[k] for k in cur if cur[k] and base.get(k)])
            out[m] = d
        res["s1"][f"{rtt:g}"] = out
        for m, label in (("api", "tfo_connect_send"), ("uv", "tfo_uv_connect"),
                         ("curlshim", "curl + shim")):
            target(f"RTT {rtt:g} ms, repeat, {label}: time / RTT",
                   out[m]["repeat"]["x_rtt"]["median"], "<=", 1.1)
        target(f"RTT {rtt:g} ms, repeat, curl + shim / curl --tcp-fastopen",
               out["curlshim"]["repeat"]["x_curl_tfo"]["median"], "<=", 1.03)

    # --- scenario 2 ---------------------------------------------------
    rtt = a.broken_rtt
    modes = [m for m in ("blackhole", "dropdata", "rstdata", "strip", "sticky")
             if any(k[0] == m for k in s2)]
    for mode in modes:
        plain = [v for _, v, e in s2.get((mode, "plain"), []) if v is not None]
        pmed = pct(plain, .5) if plain else None
        d = {"plain_ms": stats(plain)}
        for m in ("kernel", "api", "shim") + tuple(LOOP_NAMES):
            seq = sorted(s2.get((mode, m), []))
            if not seq:
                continue
            if m in LOOP_NAMES:  # compared with the same program, plainly
                own = [v for _, v, e in s2.get((mode, m + "_plain"), [])
                       if v is not None and e == "ok"]
                pmed_m = pct(own, .5) if own else None
                d[m + "_plain"] = stats(own)
            else:
                pmed_m = pmed
            first = seq[0]
            rest = [v for _, v, e in seq[1:] if v is not None and e == "ok"]
            d[m] = {"sequence_ms": [v for _, v, _ in seq],
                    "errors": [e for _, _, e in seq if e != "ok"],
                    "first_ms": first[1], "first_error": None if first[2] == "ok" else first[2],
                    "rest_ms": stats(rest),
                    "first_penalty_ms": None if first[1] is None or pmed_m is None
                    else round(first[1] - pmed_m, 2),
                    "rest_x_plain": None if not rest or not pmed_m
                    else round(pct(rest, .5) / pmed_m, 4)}
        res["s2"][mode] = d
        for m in ("api", "shim"):
            if m not in d:
                continue
            target(f"{mode}: {m} first connection (ms); aim: fallback (3 RTT) + "
                   f"2 RTT = {5 * rtt:g} ms, +10 %", d[m]["first_ms"], "<=", 5.5 * rtt)
            target(f"{mode}: {m} later connections / plain",
                   d[m]["rest_x_plain"], "<=", 1.05)
        for m in LOOP_NAMES:
            if m not in d or mode == "strip":
                continue
            target(f"{mode}: {LOOP_NAMES[m]} under the shim, errors",
                   len(d[m]["errors"]), "<=", 0)
            if mode == "rstdata":
                target(f"{mode}: {LOOP_NAMES[m]} first connection (ms); aim: "
                       f"3 RTT = {3 * rtt:g} ms, +10 %", d[m]["first_ms"], "<=", 3.3 * rtt)
                # The same, against the program's own plain time (TLS takes
                # 3 RTT plainly; node writes ~15 ms after its connect, time
                # the plain handshake hides): what the reset costs.
                target(f"{mode}: {LOOP_NAMES[m]} first connection - the same "
                       f"program plainly (ms); aim: 1 RTT = {rtt:g} ms, +10 %",
                       d[m]["first_penalty_ms"], "<=", 1.1 * rtt)
            else:
                # Issue 13's figure: the fallback delay for an RTT not yet
                # known (250 ms) + 2 RTT, +10 % (375 ms at 50 ms RTT).
                target(f"{mode}: {LOOP_NAMES[m]} first connection (ms); aim: fallback "
                       f"(250 ms unknown RTT) + 2 RTT = {250 + 2 * rtt:g} ms, +10 %",
                       d[m]["first_ms"], "<=", 1.1 * (250 + 2 * rtt))
            target(f"{mode}: {LOOP_NAMES[m]} later connections / the same "
                   "program plainly", d[m]["rest_x_plain"], "<=", 1.05)

    # --- scenario 3 ---------------------------------------------------
    def paired(metric, a_, b_):
        x, y = s3.get((metric, a_), {}), s3.get((metric, b_), {})
        return stats([x[k] / y[k] for k in x if x[k] and y.get(k)])

    s3o = res["s3"]
    for metric in sorted({k[0] for k in s3}):
        s3o[metric] = {v: stats(list(s3[(metric, v)].values()))
                       for (mm, v) in s3 if mm == metric}
    for what in ("write", "read"):
        k = f"ir_{what}"
        if k in s3o:
            s3o[k]["shim_x_none"] = paired(k, "shim", "none")
            s3o[k]["shim_minus_none"] = round(
                (s3o[k]["shim"]["median"] or 0) - (s3o[k]["none"]["median"] or 0), 2)
            target(f"instructions per {what}() on an established socket, shim / none "
                   "(user space, callgrind)", s3o[k]["shim_x_none"]["median"], "<=", 1.02)
    for what in ("write", "read"):
        k = f"ns_{what}"
        if k in s3o:
            s3o[k]["shim_x_none"] = paired(k, "shim", "none")
            target(f"time per {what}() call on an established socket, kernel included, "
                   "shim / none (stands in for total instructions: no PMU here)",
                   s3o[k]["shim_x_none"]["median"], "<=", 1.02)
    if "bulk_mib_s" in s3o:
        s3o["bulk_mib_s"]["shim_x_none"] = paired("bulk_mib_s", "shim", "none")
        target("bulk throughput over loopback, shim / none",
               s3o["bulk_mib_s"]["shim_x_none"]["median"], ">=", 0.97)
    for k in sorted(k for k in s3o if k.startswith("connrate_t")):
        s3o[k]["shim_x_plain"] = paired(k, "shim", "plain")
        s3o[k]["api_x_plain"] = paired(k, "api", "plain")
        s3o[k]["ktfo_x_plain"] = paired(k, "ktfo", "plain")
        s3o[k]["api_x_ktfo"] = paired(k, "api", "ktfo")
        target(f"new connections/s over loopback, {k[10:]} thread(s), shim / plain",
               s3o[k]["shim_x_plain"]["median"], ">=", 0.98)
        target(f"new connections/s over loopback, {k[10:]} thread(s), "
               "tfo_connect_send / plain", s3o[k]["api_x_plain"]["median"], ">=", 0.98)
    if "uv_rps" in s3o:
        s3o["uv_rps"]["tfo_x_plain"] = paired("uv_rps", "tfo", "plain")
        target("libuv loop, requests/s over loopback, tfo_uv_connect / plain "
               "(not below; 3 % noise allowed)",
               s3o["uv_rps"]["tfo_x_plain"]["median"], ">=", 0.97)

    # --- scenario 5 ---------------------------------------------------
    s5o = res["s5"]
    for (metric, v), vals in s5.items():
        s5o.setdefault(metric, {})[v] = stats(list(vals.values()))

    def paired5(metric, a_, b_):
        x, y = s5.get((metric, a_), {}), s5.get((metric, b_), {})
        return stats([x[k] / y[k] for k in x if x[k] and y.get(k)])

    def med5(metric, v):
        return s5o.get(metric, {}).get(v, {}).get("median")

    for k, who in (("syscalls_cycle", "every thread, the shim's keeper too"),
                   ("syscalls_cycle_thread", "the program's thread")):
        if med5(k, "plain") is None:
            continue
        for v in ("shim", "api"):
            if med5(k, v) is not None:
                # Two decimals: a one-off call (a page for the fd table)
                # is not a cost per connection.
                s5o[k][f"{v}_minus_plain"] = round(med5(k, v) - med5(k, "plain"), 2)
        if med5(k, "shim") is not None:
            # The keeper looks every 25 ms while SYNs are held: amortized
            # over a connection, a few hundredths.
            slack = 0.05 if k == "syscalls_cycle" else 0
            target(f"system calls per connect+write+read+close cycle, shim - plain ({who})",
                   s5o[k]["shim_minus_plain"], "<=", 2 + slack)
    for rtt, lim in (("0", 0.97), ("50", 1.9)):
        for op in ("set", "get"):
            k = f"redis_{op}_rtt{rtt}"
            if k in s5o:
                s5o[k]["shim_x_none"] = paired5(k, "shim", "none")
                target(f"redis-benchmark -k 0 {op.upper()} at {rtt} ms RTT, requests/s, "
                       "shim on both ends / neither", s5o[k]["shim_x_none"]["median"],
                       ">=", lim)

    # --- scenario 6 ---------------------------------------------------
    s6o = res["s6"]
    for (rtt, v), vals in s6.items():
        s6o.setdefault(rtt, {})[v] = stats([x for x in vals.values() if x == x])
    for rtt in list(s6o):
        x, y = s6.get((rtt, "with"), {}), s6.get((rtt, "without"), {})
        s6o[rtt]["with_x_without"] = stats([x[k] / y[k] for k in x
                                            if x[k] == x[k] and y.get(k)])
        target(f"first request after a cookie prefetch / without, {rtt} ms RTT "
               "(1 RTT instead of 2)", s6o[rtt]["with_x_without"]["median"],
               "<=", 0.6)

    # --- scenario 4 ---------------------------------------------------
    s4o = res["s4"]
    for (metric, v), vals in s4.items():
        s4o.setdefault(metric, {})[v] = stats(list(vals.values()))
    try:
        shim_rss = s4o["rss0_kb"]["shim"]["median"] - s4o["rss0_kb"]["none"]["median"]
        per_fd = ((s4o["rss1000_kb"]["shim"]["median"] - s4o["rss0_kb"]["shim"]["median"]) -
                  (s4o["rss1000_kb"]["none"]["median"] - s4o["rss0_kb"]["none"]["median"])) \
            * 1024 / 1000
        s4o["shim_rss_kb"] = round(shim_rss, 1)
        s4o["shim_per_fd_bytes_measured"] = round(per_fd, 1)
    except (KeyError, TypeError):
        pass

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    if s1 or s2:  # (bench/run --only 3 4 5 has neither)
        plots(a.out, s1, s2, rtts, modes, a.broken_rtt)
    md = markdown(res, rtts, modes, a.broken_rtt)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    if a.readme:
        readme(a.readme, res, rtts)


def headline(res, rtts):
    rtt = "50" if "50" in res["s1"] else (f"{rtts[-1]:g}" if rtts else None)
    if rtt is None:
        return "", None
    rows = [f"Request/response at {rtt} ms emulated RTT (median of repeated "
            "runs; ratios pair by pair):", "",
            "| client | first connection | repeat connection | repeat / plain | repeat / RTT |",
            "|---|---|---|---|---|"]
    for m, name in S1_NAMES.items():
        d = res["s1"][rtt][m]
        rows.append(f"| {name} | {fmt(d['first']['ms']['median'])} ms | "
                    f"{fmt(d['repeat']['ms']['median'])} ms | "
                    f"{fmt(d['repeat']['x_plain']['median'], 2)} | "
                    f"{fmt(d['repeat']['x_rtt']['median'], 2)} |")
    return "\n".join(rows) + "\n", rtt


def broken_table(res, modes, rtt):
    rows = [f"Broken paths at {rtt:g} ms RTT: a new process per connection "
            "(first connection; median of the later ones):", "",
            "| path | plain | kernel TFO alone | libtfo API: first / later | shim: first / later |",
            "|---|---|---|---|---|"]
    for mode in modes:
        d = res["s2"][mode]

        def fl(m):
            if m not in d:
                return "n/a"
            x = d[m]
            first = fmt(x["first_ms"], 0) + (f" ({x['first_error']})" if x["first_error"] else "")
            return f"{first} / {fmt(x['rest_ms'].get('median'), 0)} ms"
        k = d.get("kernel", {})
        kern = "n/a"
        if k:
            kern = f"{fmt(k['rest_ms'].get('median') or k['first_ms'], 0)} ms"
            if k["errors"]:
                kern += f", {len(k['errors'])} of {len(k['sequence_ms'])} failed ({k['errors'][0]})"
        rows.append(f"| {mode} | {fmt(d['plain_ms'].get('median'), 0)} ms | {kern} | "
                    f"{fl('api')} | {fl('shim')} |")
    return "\n".join(rows) + "\n"


def loop_table(res, modes, rtt):
    rows = [f"Program models under the shim at {rtt:g} ms RTT, a new process per "
            "connection: first connection through the path / median of the "
            "later ones (the same program without the shim):", "",
            "| path | " + " | ".join(LOOP_NAMES.values()) + " |",
            "|---|" + "---|" * len(LOOP_NAMES)]
    for mode in modes:
        d = res["s2"][mode]
        cells = []
        for m in LOOP_NAMES:
            if m not in d:
                cells.append("n/a")
                continue
            x = d[m]
            first = fmt(x["first_ms"], 0) + (f" ({x['first_error']})" if x["first_error"] else "")
            cells.append(f"{first} / {fmt(x['rest_ms'].get('median'), 0)} "
                         f"({fmt(d[m + '_plain'].get('median'), 0)}) ms"
                         + (f", {len(x['errors'])} failed" if x["errors"] else ""))
        rows.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def markdown(res, rtts, modes, brtt):
    m = res["meta"]
    L = [f"# libtfo benchmarks{' (quick mode)' if m['quick'] else ''}", "",
         f"Linux {m['kernel']}, {m['nproc']} CPUs ({m['cpu']}); {m['seconds']} s. "
         "Every figure is a median over repeated runs with p25..p75 in "
         "parentheses (min..max in results.json); ratios are taken pair by "
         "pair within one round. Emulated RTT: tests/lab/lab-delay (NFQUEUE).", ""]
    h, _ = headline(res, rtts)
    if res["s1"]:
        L += ["## Headline", "", h]
        L += ["## 1. Request/response", ""]
    for rtt in rtts:
        r = f"{rtt:g}"
        L += [f"### RTT {r} ms", "",
              "| client | first ms | first / plain | repeat ms | repeat / plain | repeat / RTT |",
              "|---|---|---|---|---|---|"]
        for k, name in S1_NAMES.items():
            d = res["s1"][r][k]
            L.append(f"| {name} | {fs(d['first']['ms'])} | {fs(d['first']['x_plain'], 2)} | "
                     f"{fs(d['repeat']['ms'])} | {fs(d['repeat']['x_plain'], 2)} | "
                     f"{fs(d['repeat']['x_rtt'], 2)} |")
        x = res["s1"][r]["curlshim"]["repeat"].get("x_curl_tfo")
        L += ["", f"curl + shim / curl --tcp-fastopen (repeat, pair by pair): {fs(x, 3)}", ""]
    if res["s1"]:
        L += ["![latency](s1-latency.png)", ""]
    if res["s2"]:
        L += ["## 2. Broken paths", "", broken_table(res, modes, brtt),
              "Per connection (ms):", ""]
    for mode in modes if res["s2"] else ():
        d = res["s2"][mode]
        for k in ("kernel", "api", "shim"):
            if k in d:
                L.append(f"- {mode}, {S2_NAMES[k]}: " +
                         " ".join(fmt(v, 0) for v in d[k]["sequence_ms"]) +
                         (f" (errors: {', '.join(sorted(set(d[k]['errors'])))})"
                          if d[k]["errors"] else ""))
    if res["s2"]:
        L += ["", loop_table(res, modes, brtt)]
        L += ["", "![broken paths](s2-sequence.png)", ""]
    L += ["## 3. Cost of the shim", ""]
    s3 = res["s3"]
    L += ["| measure | without shim / plain | with shim / libtfo | ratio |", "|---|---|---|---|"]
    for what in ("write", "read"):
        k = f"ir_{what}"
        if k in s3:
            L.append(f"| user-space instructions per {what}() (callgrind) | "
                     f"{fs(s3[k]['none'])} | {fs(s3[k]['shim'])} | {fs(s3[k]['shim_x_none'], 2)} |")
        k = f"ns_{what}"
        if k in s3:
            L.append(f"| ns per {what}() of 64 B, kernel included | "
                     f"{fs(s3[k]['none'])} | {fs(s3[k]['shim'])} | {fs(s3[k]['shim_x_none'], 3)} |")
    if "bulk_mib_s" in s3:
        L.append(f"| bulk throughput, MiB/s | {fs(s3['bulk_mib_s']['none'], 0)} | "
                 f"{fs(s3['bulk_mib_s']['shim'], 0)} | {fs(s3['bulk_mib_s']['shim_x_none'], 3)} |")
    for k in sorted(k for k in s3 if k.startswith("connrate_t")):
        t = k[10:]
        L.append(f"| new connections/s, {t} thread(s): shim | {fs(s3[k]['plain'], 0)} | "
                 f"{fs(s3[k]['shim'], 0)} | {fs(s3[k]['shim_x_plain'], 3)} |")
        L.append(f"| new connections/s, {t} thread(s): tfo_connect_send | "
                 f"{fs(s3[k]['plain'], 0)} | {fs(s3[k]['api'], 0)} | {fs(s3[k]['api_x_plain'], 3)} |")
        if "ktfo" in s3[k]:
            L.append(f"| new connections/s, {t} thread(s): kernel TFO by hand (reference) | "
                     f"{fs(s3[k]['plain'], 0)} | {fs(s3[k]['ktfo'], 0)} | "
                     f"{fs(s3[k]['ktfo_x_plain'], 3)} |")
    if "uv_rps" in s3:
        L.append(f"| libuv loop requests/s: tfo_uv_connect vs uv_tcp_connect+uv_write | "
                 f"{fs(s3['uv_rps']['plain'], 0)} | {fs(s3['uv_rps']['tfo'], 0)} | "
                 f"{fs(s3['uv_rps']['tfo_x_plain'], 3)} |")
    L += ["", "## 4. Memory", ""]
    s4 = res["s4"]

    def g(metric, v="-"):
        return s4.get(metric, {}).get(v, {})
    L += [f"- resident size of a process with one socket: {fs(g('rss0_kb', 'none'), 0)} kB "
          f"without the shim, {fs(g('rss0_kb', 'shim'), 0)} kB with it "
          f"(+{fmt(s4.get('shim_rss_kb'), 0)} kB)",
          f"- per-fd state: {fmt(s4.get('shim_per_fd_bytes_measured'), 0)} bytes per "
          "connected socket measured (RSS with 1000 more sockets, shim minus none; "
          "page-granular, so noisy); as compiled: "
          f"{fmt(g('fd_state_bytes').get('median'), 0)} bytes per fd (struct tfo__fd), "
          "in chunks of 1024 fds allocated on first use",
          f"- cache file for 10 000 destinations: {fmt(g('cache_file_bytes').get('median'), 0)} "
          f"bytes ({fmt(g('cache_disk_bytes').get('median'), 0)} on disk), fixed size; "
          f"{fmt(g('cache_stored').get('median'), 0)} of 10 000 kept (a full 16-slot "
          "window evicts)",
          f"- lookup: {fs(g('cache_hit_ns'), 0)} ns for a known destination, "
          f"{fs(g('cache_miss_ns'), 0)} ns for an unknown one; record "
          f"{fs(g('cache_record_ns'), 0)} ns", ""]
    s5 = res.get("s5", {})
    if s5:
        L += ["## 5. Cost per connection", "",
              "System calls per connect+write+read+close cycle (a blocking client, "
              "a cookie held; strace, 1050 cycles minus 50):", "",
              "| client | every thread | the program's thread |", "|---|---|---|"]
        for v, name in (("plain", "plain"), ("shim", "under the shim"),
                        ("api", "tfo_connect_send")):
            L.append(f"| {name} | {fs(s5.get('syscalls_cycle', {}).get(v, {}), 2)} | "
                     f"{fs(s5.get('syscalls_cycle_thread', {}).get(v, {}), 2)} |")
        L += ["", "redis-benchmark -k 0 (a new connection per request, 50 clients), "
              "requests/s:", "",
              "| RTT | request | neither | shim on both ends | ratio |", "|---|---|---|---|---|"]
        for rtt in ("0", "50"):
            for op in ("set", "get"):
                k = f"redis_{op}_rtt{rtt}"
                if k in s5:
                    L.append(f"| {rtt} ms | {op.upper()} | {fs(s5[k].get('none', {}), 0)} | "
                             f"{fs(s5[k].get('shim', {}), 0)} | "
                             f"{fs(s5[k].get('shim_x_none', {}), 3)} |")
        L.append("")
    s6 = res.get("s6", {})
    if s6:
        L += ["## 6. Cookie prefetch", "",
              "The first request to a server (tfo_connect_send, fresh cookie "
              "cache), without and after tfo_cookie_prefetch:", "",
              "| RTT | without | after a prefetch | ratio (pair by pair) |",
              "|---|---|---|---|"]
        for rtt in sorted(s6, key=float):
            L.append(f"| {rtt} ms | {fs(s6[rtt].get('without', {}), 1, ' ms')} | "
                     f"{fs(s6[rtt].get('with', {}), 1, ' ms')} | "
                     f"{fs(s6[rtt].get('with_x_without', {}), 2)} |")
        L.append("")
    L += ["## Targets", "", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        met = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
        L.append(f"| {t['target']} | {fmt(t['value'], 3)} | {t['op']} {t['limit']:g} | {met} |")
    return "\n".join(L) + "\n"


def readme(path, res, rtts):
    try:
        text = open(path).read()
    except OSError:
        return
    b, e = "<!-- bench:begin -->", "<!-- bench:end -->"
    if b not in text or e not in text:
        return
    m = res["meta"]
    h, rtt = headline(res, rtts)
    bh = res["s2"].get("blackhole", {})
    broken = ""
    if all(k in bh for k in ("kernel", "api", "shim")):
        broken = (f"On a path that drops TFO SYNs (blackhole, {res['meta'].get('broken_rtt', 50):g} ms RTT, "
                  f"plain {fmt(bh['plain_ms'].get('median'), 0)} ms), kernel TFO alone takes "
                  f"{fmt(pct([v for v in bh['kernel']['sequence_ms'] if v is not None], .5), 0)}"
                  " ms on every connection; "
                  f"`tfo_connect_send` {fmt(bh['api']['first_ms'], 0)} ms on the first and "
                  f"{fmt(bh['api']['rest_ms'].get('median'), 0)} ms on later ones (new processes, "
                  f"shared cache); the shim under a blocking client {fmt(bh['shim']['first_ms'], 0)} "
                  f"ms on the first and {fmt(bh['shim']['rest_ms'].get('median'), 0)} ms later.")
        models = [f"{LOOP_NAMES[m]} {fmt(bh[m]['first_ms'], 0)} ms then "
                  f"{fmt(bh[m]['rest_ms'].get('median'), 0)} ms"
                  for m in LOOP_NAMES if m in bh]
        if models:
            broken += (" Under the shim, by program model (first connection, then "
                       "later ones): " + "; ".join(models) + ".")
        broken += "\n\n"
    body = (f"{b}\n_Generated by `bench/run{' --quick' if m['quick'] else ''}` on "
            f"Linux {m['kernel']}, {m['nproc']} CPUs ({m['cpu']})._\n\n{h}\n{broken}"
            "![Broken paths: time per connection](bench/results/s2-sequence.png)\n\n"
            "Everything else (broken paths, cost of the shim, memory, which "
            "targets are met): [bench/results/results.md](bench/results/results.md).\n"
            f"{e}")
    text = re.sub(re.escape(b) + ".*?" + re.escape(e), lambda _: body, text, flags=re.S)
    open(path, "w").write(text)


def plots(out, s1, s2, rtts, modes, brtt):
    d = os.path.join(out, ".plotdata")
    os.makedirs(d, exist_ok=True)
    methods = list(S1_NAMES)
    gp = ["set terminal pngcairo size 1000,420 font ',9'" if has_cairo()
          else "set terminal png size 1000,420 small"]
    # 1: latency distributions, one panel per RTT, in units of RTT.
    gp += [f"set output '{out}/s1-latency.png'",
           f"set multiplot layout 1,{max(len(rtts), 1)} title "
           "'Request/response: every sample, first (x) and repeat (o) connections'",
           "set xtics rotate by 35 right", "set grid ytics", "set key bottom right",
           "set ylabel 'time / RTT'", "set yrange [0:*]",
           "set xrange [-0.5:%d]" % (len(methods) - 0.5),
           "set xtics (%s)" % ", ".join(f"'{m}' {i}" for i, m in enumerate(methods))]
    for rtt in rtts:
        fn = os.path.join(d, f"s1-{rtt:g}.dat")
        with open(fn, "w") as f:
            for i, m in enumerate(methods):
                for kind, off in (("first", -0.15), ("repeat", 0.15)):
                    for j, v in enumerate(sorted(s1.get((rtt, m, kind), {}).values(),
                                                 key=lambda x: x or 0)):
                        if v is not None:
                            f.write(f"{i + off + (j % 5 - 2) * 0.03} {v / rtt:.4f} {kind}\n")
        gp += [f"set title 'RTT {rtt:g} ms'",
               f"plot '{fn}' using 1:(strcol(3) eq 'first' ? $2 : 1/0) with points pt 2 lc rgb '#c0392b' title 'first', "
               f"'' using 1:(strcol(3) eq 'repeat' ? $2 : 1/0) with points pt 6 lc rgb '#2471a3' title 'repeat', "
               "1 with lines dt 2 lc rgb '#555555' title '1 RTT', "
               "2 with lines dt 3 lc rgb '#999999' title '2 RTT'"]
    gp += ["unset multiplot", "unset xtics", "set xtics", "unset xrange",
           "set xtics norotate"]
    # 2: time per connection over a sequence on a broken path.
    gp += [f"set output '{out}/s2-sequence.png'",
           "set terminal pngcairo size 1000,840 font ',9'" if has_cairo()
           else "set terminal png size 1000,840 small",
           f"set output '{out}/s2-sequence.png'",
           f"set multiplot layout 3,2 title 'Broken paths at {brtt:g} ms RTT: time per "
           "connection, a new process each'",
           "set logscale y", "set yrange [20:3000]", "set xlabel 'connection #'",
           "set ylabel 'ms'", "set key top right", "set xrange [0.5:*]"]
    for mode in modes:
        files = []
        for m in ("plain", "kernel", "api", "shim"):
            fn = os.path.join(d, f"s2-{mode}-{m}.dat")
            with open(fn, "w") as f:
                for i, v, e in sorted(s2.get((mode, m), [])):
                    if v is not None:
                        f.write(f"{i} {v}\n")
            files.append((m, fn))
        style = {"plain": "lc rgb '#777777' pt 1", "kernel": "lc rgb '#c0392b' pt 7",
                 "api": "lc rgb '#2471a3' pt 5", "shim": "lc rgb '#27ae60' pt 9"}
        gp += [f"set title '{mode}'",
               "plot " + ", ".join(f"'{fn}' using 1:2 with linespoints {style[m]} "
                                   f"title '{S2_NAMES[m]}'" for m, fn in files)]
    gp += ["unset multiplot"]
    try:
        subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True,
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("summarize: gnuplot failed:", getattr(e, "stderr", e))
    for fn in os.listdir(d):
        os.unlink(os.path.join(d, fn))
    os.rmdir(d)


def has_cairo():
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        return "pngcairo" in (r.stdout + r.stderr)
    except OSError:
        return False


if __name__ == "__main__":
    main()
