#!/usr/bin/env python3
"""pyasn side of the LPM benchmark (see run.sh).

Loads the ipasn file the Rust bench generated with pyasn, looks up the same addresses the Rust
bench answered (addrs.txt / answers.txt), times it on one thread, checks that every answer is
identical, and writes a markdown table comparing both (kizuna's numbers come from kizuna.json).

usage: pyasn_bench.py DATA_DIR OUT_MD
"""

import json
import os
import sys
import time

import pyasn


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


def main():
    data, out_md = sys.argv[1], sys.argv[2]
    with open(os.path.join(data, "kizuna.json")) as f:
        kz = json.load(f)
    with open(os.path.join(data, "addrs.txt")) as f:
        addrs = [line.strip() for line in f]
    with open(os.path.join(data, "answers.txt")) as f:
        want = [None if a.strip() == "-" else int(a) for a in f]

    rss0 = rss_bytes()
    t = time.perf_counter()
    db = pyasn.pyasn(os.path.join(data, "table.dat"))
    load_s = time.perf_counter() - t
    rss_growth = rss_bytes() - rss0

    # The public API, as users call it: lookup() returns (asn, prefix).
    lookup = db.lookup
    best = None
    best_cpu = None
    got = None
    for _ in range(2):
        t, c = time.perf_counter(), time.process_time()
        res = [lookup(a)[0] for a in addrs]
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if best is None or dt < best:
            best = dt
        if best_cpu is None or dc < best_cpu:
            best_cpu = dc
        got = res
    rate = len(addrs) / best
    cpu_rate = len(addrs) / best_cpu

    # The C radix search alone, without the tuple that lookup() builds.
    search = db.radix.search_best
    t = time.perf_counter()
    for a in addrs:
        search(a)
    raw_rate = len(addrs) / (time.perf_counter() - t)

    mismatches = sum(1 for g, w in zip(got, want) if g != w) + abs(len(got) - len(want))
    first_bad = next(((a, g, w) for a, g, w in zip(addrs, got, want) if g != w), None)
    identical = mismatches == 0 and len(addrs) == kz["py_lookups"]

    res = {
        "pyasn_version": pyasn.__version__,
        "lookups": len(addrs),
        "lookups_per_s": rate,
        "cpu_lookups_per_s": cpu_rate,
        "search_best_per_s": raw_rate,
        "load_s": load_s,
        "rss_growth_bytes": rss_growth,
        "mismatches": mismatches,
        "first_mismatch": first_bad,
    }
    with open(os.path.join(data, "pyasn.json"), "w") as f:
        json.dump(res, f, indent=1)

    kz_rate = kz["lookups_per_s_py_set"]
    kz_cpu = kz["cpu_lookups_per_s_py_set"]
    lines = [
        "# LPM attribution: kizuna-attrib vs pyasn",
        "",
        "Table: %d prefixes (%d IPv4, %d IPv6), generated with a fixed seed, in pyasn's ipasn format."
        % (kz["prefixes"], kz["prefixes_v4"], kz["prefixes_v6"]),
        "Addresses: drawn uniformly from inside uniformly chosen prefixes (%.0f%% IPv4). One thread each."
        % (100.0 * kz["v4_addrs"] / kz["lookups"]),
        "",
        "Wall-clock lookups/s count the time other processes took the core; lookups per CPU second "
        "(the thread's own run time) are what one core does.",
        "",
        "| implementation | addresses | lookups/s | per CPU s | vs pyasn lookup() (CPU) | load + build | memory | answers identical |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        "| kizuna `PrefixTable::lookup` | %d | %.2fM | %.2fM | %.1fx | %.2f s | %s (heap) | %s |"
        % (
            kz["py_lookups"],
            kz_rate / 1e6,
            kz_cpu / 1e6,
            kz_cpu / cpu_rate,
            kz["parse_s"] + kz["build_s"],
            mib(kz["memory_bytes"]),
            "yes" if identical else "NO (%d differ)" % mismatches,
        ),
        "| kizuna `PrefixTable::lookup` | %d | %.2fM | %.2fM | %.1fx | | | (checksum %d) |"
        % (kz["lookups"], kz["lookups_per_s"] / 1e6, kz["cpu_lookups_per_s"] / 1e6,
           kz["cpu_lookups_per_s"] / cpu_rate, kz["checksum"]),
        "| kizuna `lookup_many` (groups of 1024) | %d | %.2fM | %.2fM | %.1fx | | | same checksum |"
        % (kz["lookups"], kz["lookup_many_per_s"] / 1e6, kz["cpu_lookup_many_per_s"] / 1e6,
           kz["cpu_lookup_many_per_s"] / cpu_rate),
        "| kizuna `lookup_v4` only | %d | %.2fM | %.2fM | | | | |"
        % (kz["v4_addrs"], kz["lookups_per_s_v4"] / 1e6, kz["cpu_lookups_per_s_v4"] / 1e6),
        "| kizuna `lookup_v6` only | %d | %.2fM | %.2fM | | | | |"
        % (kz["v6_addrs"], kz["lookups_per_s_v6"] / 1e6, kz["cpu_lookups_per_s_v6"] / 1e6),
        "| pyasn %s `lookup()` | %d | %.2fM | %.2fM | 1.0x | %.2f s | %s (RSS growth) | reference |"
        % (pyasn.__version__, len(addrs), rate / 1e6, cpu_rate / 1e6, load_s, mib(rss_growth)),
        "| pyasn %s `radix.search_best()` | %d | %.2fM | | | | | |"
        % (pyasn.__version__, len(addrs), raw_rate / 1e6),
        "",
        "kizuna: %d value slots; table parse %.2f s, build %.2f s; process RSS growth during build %s."
        % (kz["ranges"], kz["parse_s"], kz["build_s"], mib(kz["rss_growth_bytes"] or 0)),
        "Ratio on the same %d addresses: kizuna is %.1fx pyasn lookup() per CPU second, %.1fx wall-clock."
        % (len(addrs), kz_cpu / cpu_rate, kz_rate / rate),
    ]
    if first_bad:
        lines.append("First mismatch: %s pyasn=%s kizuna=%s" % first_bad)
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
