#!/usr/bin/env python3
"""Table of medians and ratios from tests/bench/run.sh's results.tsv.

Ratio column: meshgate against the best peer measured in the same run,
written so that > 1.00 always means meshgate is better (rates: meshgate/best;
times, CPU and memory: best/meshgate). Exit 1 if a figure is missing for a
gateway (the harness is broken), never for speed."""
import argparse
import datetime
import os
import platform
import statistics
import sys

# (key, label, higher_is_better, format)
FIGURES = [
    ("handshake.rate", "full mTLS handshakes/s (16 in flight)", True, "{:,.0f}"),
    ("handshake.cpu_us_per_op", "  server CPU per handshake, µs", False, "{:,.0f}"),
    ("handshake.per_core", "  handshakes per core-second of server CPU", True, "{:,.0f}"),
    ("resume.rate", "resumed mTLS handshakes/s (16 in flight)", True, "{:,.0f}"),
    ("resume.cpu_us_per_op", "  server CPU per resumed handshake, µs", False, "{:,.0f}"),
    ("keepalive.rate", "keep-alive requests/s (32 conns)", True, "{:,.0f}"),
    ("keepalive.cpu_us_per_op", "  server CPU per request, µs", False, "{:,.1f}"),
    ("keepalive.per_core", "  requests per core-second of server CPU", True, "{:,.0f}"),
    ("keepalive512.rate", "keep-alive requests/s (512 conns)", True, "{:,.0f}"),
    ("keepalive512.cpu_us_per_op", "  server CPU per request, µs", False, "{:,.1f}"),
    ("connreq.rate", "a connection per request: requests/s (16 in flight)", True, "{:,.0f}"),
    ("connreq.cpu_us_per_op", "  server CPU per connection and request, µs", False, "{:,.0f}"),
    ("latency.p50_us", "latency p50 at 1,000 req/s, µs", False, "{:,.0f}"),
    ("latency.p90_us", "latency p90, µs", False, "{:,.0f}"),
    ("latency.p99_us", "latency p99, µs", False, "{:,.0f}"),
    ("latency.max_us", "latency max, µs", False, "{:,.0f}"),
    ("latency.cpu_pct", "CPU at 1,000 req/s, % of a core", False, "{:.1f}"),
    ("bulk.mbps", "bulk MB/s (2 conns, 64 MB GETs)", True, "{:,.0f}"),
    ("bulk.cpu_pct", "  CPU during bulk, % of a core", None, "{:.0f}"),
    ("idle.cpu_pct", "idle CPU, % of a core", False, "{:.1f}"),
    ("mem.pss_mb", "memory after warm-up (PSS), MB", False, "{:.1f}"),
    ("idleconns.open", "idle mTLS connections held", None, "{:,.0f}"),
    ("idleconns.pss_mb", "memory with the idle mTLS conns (PSS), MB", None, "{:.1f}"),
    ("idleconns.kb_per_conn", "  per idle connection, KB", False, "{:.1f}"),
    ("handshake_idle.rate", "  full mTLS handshakes/s beside them (16 in flight)", True, "{:,.0f}"),
    ("handshake_idle.cpu_us_per_op", "    server CPU per handshake, µs", False, "{:,.0f}"),
    ("keepalive_idle.rate", "  keep-alive requests/s beside them (32 conns)", True, "{:,.0f}"),
    ("keepalive_idle.cpu_us_per_op", "    server CPU per request, µs", False, "{:,.1f}"),
    ("connreq_idle.rate", "  a connection per request beside them: requests/s", True, "{:,.0f}"),
    ("connreq_idle.cpu_us_per_op", "    server CPU per connection and request, µs", False, "{:,.0f}"),
]
REQUIRED = {"handshake": "handshake.rate", "keepalive": "keepalive.rate",
            "keepalive512": "keepalive512.rate",
            "connreq": "connreq.rate",
            "latency": "latency.p99_us", "bulk": "bulk.mbps", "memory": "idleconns.kb_per_conn",
            "resume": "resume.rate"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--gateways", default="meshgate nginx haproxy")
    ap.add_argument("--rounds", default="?")
    ap.add_argument("--idle-conns", default="?")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--latency-duration", default="?")
    ap.add_argument("--mtu", default="1500")
    ap.add_argument("--peer-offload", default="on")
    ap.add_argument("--out")
    ap.add_argument("--figures", default="handshake keepalive keepalive512 connreq latency bulk memory")
    a = ap.parse_args()
    gws = a.gateways.split()
    vals = {}
    for line in open(a.tsv):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 4 or parts[3] == "":
            continue
        gw, _, key, v = parts
        vals.setdefault((gw, key), []).append(float(v))
    # CPU-normalised rates, per round: operations per second of server CPU.
    for gw in gws:
        for f in ("handshake", "keepalive"):
            us = vals.get((gw, f + ".cpu_us_per_op"), [])
            vals[(gw, f + ".per_core")] = [1e6 / u for u in us if u > 0]
    med = {k: statistics.median(v) for k, v in vals.items() if v}
    peers = [g for g in gws if not g.startswith("meshgate")]
    lines = []
    cpu = platform.processor() or ""
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines.append("Run: %s UTC, %s, %d CPUs (%s), kernel %s" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), platform.node(), os.cpu_count(),
        cpu, platform.release()))
    lines.append("Medians of %s rounds of %s s per figure (%s s for latency); each gateway pinned to one core; MTU %s on every "
                 "veth; client and upstream offloads %s; ratio > 1.00 = meshgate better than the best peer."
                 % (a.rounds, a.duration, a.latency_duration, a.mtu, a.peer_offload))
    lines.append("")
    hdr = "| figure | " + " | ".join(gws) + (" | meshgate vs best peer |" if peers and "meshgate" in gws else " |")
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for key, label, higher, fmt in FIGURES:
        if not any((gw, key) in med for gw in gws):
            continue
        label = label.format(idle=a.idle_conns)
        cells = []
        for gw in gws:
            v = med.get((gw, key))
            cells.append(fmt.format(v) if v is not None else "–")
        row = "| %s | %s |" % (label, " | ".join(cells))
        if peers and "meshgate" in gws:
            m = med.get(("meshgate", key))
            pv = [med[(p, key)] for p in peers if (p, key) in med]
            ratio = ""
            if m is not None and pv and higher is not None:
                best = max(pv) if higher else min(pv)
                if higher and best > 0:
                    ratio = "%.2f×" % (m / best)
                elif not higher and m > 0 and best > 0:
                    ratio = "%.2f×" % (best / m)
                elif not higher:
                    ratio = "–"      # a peer at zero: no meaningful ratio
            row += " %s |" % ratio
        lines.append(row)
    errs = {gw: sum(sum(vals.get((gw, f + ".errors"), [0])) for f in
                    ("handshake", "keepalive", "keepalive512", "connreq", "latency", "bulk")) for gw in gws}
    lines.append("")
    lines.append("Client errors per gateway (all rounds): " +
                 ", ".join("%s %d" % (g, e) for g, e in errs.items()))
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    req = ["idle.cpu_pct"] + [REQUIRED[f] for f in a.figures.split() if f in REQUIRED]
    missing = [(g, k) for g in gws for k in req if (g, k) not in med]
    for g, k in missing:
        print("# missing figure: %s %s" % (g, k), file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
