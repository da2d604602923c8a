#!/usr/bin/env python3
"""A fetch-only Oura API v2 client in the Python standard library.

The baseline for `benches/compare.rs`: it fetches and parses every page of
every data type ouradb syncs, over the same date windows, with the same
number of types in flight (4), and stores nothing. Whatever ouradb spends
beyond this is the cost of storing.

usage: fetch_only.py BASE_URL TOKEN START END TYPES_JSON
  START, END   first and last day (YYYY-MM-DD) to fetch
  TYPES_JSON   [[path, style, window_days], ...]; style is one of
               dates | datetimes | list | single

Prints one JSON object: requests, documents, bytes.
"""

import datetime as dt
import http.client
import json
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

IN_FLIGHT = 4


def windows(start, end, days):
    """Newest first, like a backfill: [from, to] inclusive, `days` long."""
    to = end
    while to >= start:
        frm = max(start, to - dt.timedelta(days=days - 1))
        yield frm, to
        to = frm - dt.timedelta(days=1)


class Fetcher:
    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/") + "/v2/usercollection/"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.requests = self.documents = self.bytes = 0

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.conn = c
        return c

    def get(self, path, params):
        url = self.prefix + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        c = self.conn()
        c.request("GET", url, headers=self.headers)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}: {body[:200]!r}")
        doc = json.loads(body)
        with self.lock:
            self.requests += 1
            self.bytes += len(body)
        return doc

    def pages(self, path, params):
        token = None
        while True:
            p = dict(params)
            if token:
                p["next_token"] = token
            page = self.get(path, p)
            with self.lock:
                self.documents += len(page["data"])
            token = page.get("next_token")
            if not token:
                return

    def fetch_type(self, path, style, window_days, start, end):
        if style == "single":
            self.get(path, {})
            with self.lock:
                self.documents += 1
        elif style == "list":
            self.pages(path, {})
        elif style == "dates":
            # end_date is exclusive for collections: ask for one more day.
            for frm, to in windows(start, end, window_days):
                self.pages(path, {"start_date": frm.isoformat(),
                                  "end_date": (to + dt.timedelta(days=1)).isoformat()})
        elif style == "datetimes":
            for frm, to in windows(start, end, window_days):
                self.pages(path, {
                    "start_datetime": f"{frm.isoformat()}T00:00:00+00:00",
                    "end_datetime": f"{(to + dt.timedelta(days=1)).isoformat()}T00:00:00+00:00",
                })
        else:
            raise ValueError(style)


def main():
    base, token, start, end, types = sys.argv[1:6]
    start = dt.date.fromisoformat(start)
    end = dt.date.fromisoformat(end)
    f = Fetcher(base, token)
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        jobs = [pool.submit(f.fetch_type, p, s, w, start, end)
                for p, s, w in json.loads(types)]
        for j in jobs:
            j.result()
    print(json.dumps({"requests": f.requests, "documents": f.documents,
                      "bytes": f.bytes}))


if __name__ == "__main__":
    main()
