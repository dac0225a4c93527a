"""Full paginated read of one TAXII 2.1 collection with taxii2-client's as_pages.

usage: read.py COLLECTION_URL USER PASSWORD LIMIT  -> prints JSON {objects, pages, seconds, objects_per_s}
"""
import json
import sys
import time

from taxii2client.v21 import Collection, as_pages

url, user, password, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
col = Collection(url, user=user, password=password)
start = time.perf_counter()
n = 0
pages = 0
ids = set()
for env in as_pages(col.get_objects, per_request=limit):
    objs = env.get("objects", [])
    pages += 1
    n += len(objs)
    for o in objs:
        ids.add(o["id"])
secs = time.perf_counter() - start
print(json.dumps({"objects": n, "distinct": len(ids), "pages": pages, "seconds": secs, "objects_per_s": n / secs if secs else 0}))
