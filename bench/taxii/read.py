"""Full (or first MAX_PAGES) paginated read of one TAXII 2.1 collection with taxii2-client's as_pages.

usage: read.py COLLECTION_URL USER PASSWORD LIMIT [MAX_PAGES]
  -> prints JSON {objects, distinct, pages, seconds, objects_per_s, first_page_s, complete}
MAX_PAGES 0 (default) reads every page.
"""
import json
import sys
import time

from taxii2client.v21 import Collection, as_pages

url, user, password, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
max_pages = int(sys.argv[5]) if len(sys.argv) > 5 else 0
col = Collection(url, user=user, password=password)
start = time.perf_counter()
n = 0
pages = 0
ids = set()
first_page = None
complete = True
for env in as_pages(col.get_objects, per_request=limit):
    objs = env.get("objects", [])
    pages += 1
    if first_page is None:
        first_page = time.perf_counter() - start
    n += len(objs)
    for o in objs:
        ids.add(o["id"])
    print(f"page {pages}: {len(objs)} objects, {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
    if max_pages and pages >= max_pages:
        complete = not env.get("more", False)
        break
secs = time.perf_counter() - start
print(json.dumps({"objects": n, "distinct": len(ids), "pages": pages, "seconds": secs,
                  "objects_per_s": n / secs if secs else 0, "first_page_s": first_page or 0.0,
                  "complete": complete}))
