#!/usr/bin/env python3
"""Baseline drive-by crawler with a common Python stack (requests + BeautifulSoup), following
the same rules as kizuna-crawl on the same farm:

- redirects handled by the crawler (allow_redirects=False), every hop recorded;
- <meta http-equiv=refresh>, location / location.href / location.replace|assign string literals
  in inline scripts (same regex), iframes (hidden ones marked), <script src> from other hosts,
  <object data>/<embed src>, links to executable/archive downloads, document.write iframes in
  external scripts;
- same depth (8), breadth (16), pages-per-chain (64) and size limits (2 MiB pages, 32 MiB
  downloads, read in chunks, stopped at the cap);
- downloads hashed (MD5, SHA-1, SHA-256) and checked for the test rules' strings (a substring
  check standing in for YARA: cheaper than a YARA scan, so the comparison favours the baseline);
- verdicts with the same propagation (entry, redirector, exploit, distribution, clean, error).

Host names are pinned to the farm's address the way curl --resolve does: the request goes to the
address, with the Host header of the name.

Usage: baseline.py --seeds seeds.txt --hosts hosts.txt [--threads 8]
Prints one JSON line like crawl_bench.
"""

import argparse
import hashlib
import json
import re
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

import requests
from bs4 import BeautifulSoup

UA = "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko"
HEADERS = {
    "User-Agent": UA,
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "ja,en;q=0.8",
}
MAX_DEPTH, MAX_BREADTH, MAX_PAGES = 8, 16, 64
MAX_PAGE, MAX_DOWNLOAD = 2 << 20, 32 << 20
JS_LOCATION = re.compile(
    r"""\blocation(?:\.href)?\s*=\s*(?:"([^"\n]{1,2048})"|'([^'\n]{1,2048})')|\blocation\.(?:replace|assign)\s*\(\s*(?:"([^"\n]{1,2048})"|'([^'\n]{1,2048})')"""
)
JS_IFRAME = re.compile(r"""(?i)<i?frame\b[^>]{0,512}?\bsrc\s*=\s*\\?["']?([^"'\\\s>]{1,2048})[^>]{0,512}""")
DOWNLOAD_EXT = (".exe", ".scr", ".com", ".pif", ".msi", ".dll", ".bat", ".cmd", ".vbs", ".js", ".jse", ".hta",
                ".ps1", ".jar", ".apk", ".zip", ".rar", ".7z", ".cab", ".swf", ".pdf", ".doc", ".xls", ".elf",
                ".bin", ".sh")
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/javascript", "application/javascript",
              "application/x-javascript")
INJECT_RE = re.compile(
    rb"""(?i)<iframe[^>]{0,300}width\s*=\s*["']?[01]["']?[^>]{0,300}height\s*=\s*["']?[01]\b|<iframe[^>]{0,300}style\s*=\s*["'][^"']{0,200}(visibility\s*:\s*hidden|display\s*:\s*none)"""
)

hosts = {}
local = threading.local()


def session():
    s = getattr(local, "s", None)
    if s is None:
        s = requests.Session()
        s.headers.update(HEADERS)
        s.trust_env = False
        local.s = s
    return s


def refresh_target(content):
    m = re.match(r"\s*\d*\s*[;,]\s*(?:url\s*=\s*)?(.*)$", content or "", re.I)
    if not m:
        return None
    t = m.group(1).strip().strip("'\"").strip()
    return t or None


def tiny(v):
    return v is not None and v.strip().removesuffix("px").strip() in ("0", "1")


def style_hidden(s):
    s = "".join(s.lower().split())
    return any(k in s for k in ("display:none", "visibility:hidden", "width:0", "height:0", "width:1px",
                                "height:1px", "left:-", "top:-"))


def script_targets(js, out):
    for m in JS_LOCATION.finditer(js):
        out.append((next(g for g in m.groups() if g is not None), "js-location", False))
    for m in JS_IFRAME.finditer(js):
        out.append((m.group(1), "iframe", style_hidden(m.group(0))))


def fetch(url):
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    addr = hosts.get(host)
    if addr is None:
        return {"error": "unresolved"}
    target = f"{parts.scheme}://{addr}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    try:
        r = session().get(target, headers={"Host": host}, allow_redirects=False, stream=True, timeout=(5, 10))
        ct = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower() or None
        cd = r.headers.get("Content-Disposition")
        page = (ct is None or ct.startswith(PAGE_TYPES)) and cd is None
        cap = MAX_PAGE if page else MAX_DOWNLOAD
        body, truncated = bytearray(), False
        for chunk in r.iter_content(65536):
            room = cap - len(body)
            if len(chunk) > room:
                body += chunk[:room]
                truncated = True
                break
            body += chunk
        r.close()
        return {"status": r.status_code, "ct": ct, "cd": cd, "location": r.headers.get("Location"),
                "refresh": r.headers.get("Refresh"), "body": bytes(body), "truncated": truncated}
    except requests.RequestException as e:
        return {"error": str(e)}


def scan_page(body, page_host, out):
    soup = BeautifulSoup(body, "html.parser")
    for el in soup.find_all(["iframe", "frame", "script", "meta", "object", "embed", "applet", "a"]):
        name = el.name
        if name in ("iframe", "frame") and el.get("src"):
            hidden = tiny(el.get("width")) or tiny(el.get("height")) or style_hidden(el.get("style") or "") \
                or el.has_attr("hidden")
            out.append((el["src"], "iframe", hidden))
        elif name == "script":
            src = el.get("src")
            if src:
                h = urlsplit(src).hostname
                if h and h.lower() != page_host:
                    out.append((src, "script-src", False))
            elif el.string:
                script_targets(el.string, out)
        elif name == "meta" and (el.get("http-equiv") or "").strip().lower() == "refresh":
            t = refresh_target(el.get("content"))
            if t:
                out.append((t, "meta-refresh", False))
        elif name in ("object", "embed", "applet"):
            u = el.get("data") or el.get("src") or el.get("archive") or el.get("code")
            if u:
                out.append((u, "embed", False))
        elif name == "a" and el.get("href"):
            h = el["href"]
            if h.split("?")[0].split("#")[0].lower().endswith(DOWNLOAD_EXT) or el.has_attr("download"):
                out.append((h, "download", False))


def crawl(seed):
    nodes, edges, visited = [], [], {}
    queue = [(seed, 0, None)]
    qi = 0
    while qi < len(queue):
        url, depth, parent = queue[qi]
        qi += 1
        if url in visited:
            if parent:
                edges.append((parent[0], visited[url], parent[1]))
            continue
        if len(nodes) >= MAX_PAGES:
            break
        f = fetch(url)
        nid = len(nodes)
        visited[url] = nid
        host = (urlsplit(url).hostname or "").lower()
        node = {"url": url, "host": host, "depth": depth, "error": f.get("error"), "hits": set(), "download": False,
                "via": parent}
        nodes.append(node)
        if parent:
            edges.append((parent[0], nid, parent[1]))
        found = []
        if "error" not in f:
            st = f["status"]
            if 300 <= st < 400 and f["location"]:
                found.append((f["location"], f"redirect-{st}", False))
            if f["refresh"]:
                t = refresh_target(f["refresh"])
                if t:
                    found.append((t, "meta-refresh", False))
            body = f["body"]
            if body:
                kind_pe = body[:2] == b"MZ"
                page = (f["ct"] is None or f["ct"].startswith(PAGE_TYPES)) and not f["cd"] and not kind_pe
                if page:
                    node["sha256"] = hashlib.sha256(body).hexdigest()
                    if INJECT_RE.search(body):
                        node["hits"].add("injection")
                    if b"PluginDetect" in body and re.search(rb"getVersion\s*\(\s*[\"'](Java|Flash)", body):
                        node["hits"].add("exploit")
                    if f["ct"] in ("text/javascript", "application/javascript", "application/x-javascript"):
                        script_targets(body.decode("utf-8", "replace"), found)
                    else:
                        scan_page(body, host, found)
                else:
                    node["download"] = True
                    node["pe"] = kind_pe
                    node["md5"] = hashlib.md5(body).hexdigest()
                    node["sha1"] = hashlib.sha1(body).hexdigest()
                    node["sha256"] = hashlib.sha256(body).hexdigest()
                    node["truncated"] = f["truncated"]
                    if kind_pe and b"KIZUNA-TEST-MALWARE-MARKER" in body:
                        node["hits"].add("malware")
        taken = 0
        for (u, reason, hidden) in found:
            if depth + 1 > MAX_DEPTH or taken >= MAX_BREADTH:
                break
            absu = urljoin(url, u.strip())
            if not absu.startswith(("http://", "https://")):
                continue
            taken += 1
            queue.append((absu, depth + 1, (nid, reason)))
    # Verdicts, same propagation as kizuna-crawl.
    n = len(nodes)
    own = [None] * n
    for i, nd in enumerate(nodes):
        if nd["download"]:
            if "malware" in nd["hits"]:
                own[i] = "distribution"
        elif "exploit" in nd["hits"]:
            own[i] = "exploit"
    for i, nd in enumerate(nodes):
        if own[i] is None and nd["download"] and nd.get("pe"):
            cur, crossed = i, False
            while nodes[cur]["via"]:
                p = nodes[cur]["via"][0]
                if nodes[p]["host"] != nd["host"]:
                    crossed = True
                    break
                cur = p
            if crossed:
                own[i] = "distribution"
    leads = [False] * n
    stack = [i for i in range(n) if own[i]]
    seen = set(stack)
    while stack:
        t = stack.pop()
        for (a, b, _) in edges:
            if b == t:
                leads[a] = True
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
    seed_host = nodes[0]["host"] if nodes else ""
    out = []
    for i, nd in enumerate(nodes):
        if own[i]:
            v = own[i]
        elif nd["error"]:
            v = "error"
        elif leads[i] or "injection" in nd["hits"]:
            v = "entry" if i == 0 or nd["host"] == seed_host else "redirector"
        elif nd.get("truncated"):
            v = "error"
        else:
            v = "clean"
        out.append(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    for line in open(a.hosts):
        parts = line.split()
        if len(parts) == 2:
            hosts[parts[0]] = parts[1]
    seeds = [l.strip() for l in open(a.seeds) if l.strip()]
    t0 = time.perf_counter()
    verdicts, seed_verdicts, pages = {}, {}, 0
    with ThreadPoolExecutor(max_workers=a.threads) as ex:
        for vs in ex.map(crawl, seeds):
            pages += len(vs)
            for v in vs:
                verdicts[v] = verdicts.get(v, 0) + 1
            if vs:
                seed_verdicts[vs[0]] = seed_verdicts.get(vs[0], 0) + 1
    secs = time.perf_counter() - t0
    print(json.dumps({
        "side": "python-requests-bs4",
        "seeds": len(seeds),
        "pages": pages,
        "seconds": secs,
        "pages_per_sec": pages / secs,
        "verdicts": dict(sorted(verdicts.items())),
        "seed_verdicts": dict(sorted(seed_verdicts.items())),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "threads": a.threads,
    }))


if __name__ == "__main__":
    sys.exit(main())
