#!/usr/bin/env python3
"""The test world's DNS: an authoritative server for one test zone, so `mongodb+srv://`
seedlists (SRV + TXT lookups, then A lookups of the hosts) can be resolved as on Atlas.

    dns_server.py --addr 127.77.0.1 --port 53 --zone zone.json

It answers only from the zone file, over UDP and TCP, and never forwards a query: a name
outside the zone (or an unknown name inside it) gets NXDOMAIN; a known name without
records of the asked type gets an empty NOERROR answer. The machine's resolver is never
changed; `with-dns` runs one command with this server as its resolver.

zone.json: {"origin": "keyshift.test", "ttl": 60, "records": [
    {"name": "_mongodb._tcp.cluster0.keyshift.test", "type": "SRV", "priority": 0, "weight": 0,
     "port": 27017, "target": "node0.cluster0.keyshift.test"},
    {"name": "cluster0.keyshift.test", "type": "TXT", "text": "replicaSet=ks2&authSource=admin"},
    {"name": "node0.cluster0.keyshift.test", "type": "A", "address": "127.0.0.1"}]}
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from dnslib import QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneResolver(BaseResolver):
    def __init__(self, zone: dict):
        self.origin = DNSLabel(zone["origin"])
        self.ttl = int(zone.get("ttl", 60))
        self.soa = RR(self.origin, QTYPE.SOA, ttl=self.ttl,
                      rdata=SOA("ns." + zone["origin"], "admin." + zone["origin"], (1, 3600, 600, 86400, self.ttl)))
        self.names: dict[str, list[RR]] = {}
        for r in zone["records"]:
            name = r["name"].rstrip(".").lower()
            if r["type"] == "SRV":
                rdata = SRV(int(r["priority"]), int(r["weight"]), int(r["port"]), r["target"])
            elif r["type"] == "TXT":
                rdata = TXT(r["text"])
            elif r["type"] == "A":
                rdata = A(r["address"])
            else:
                raise ValueError("unsupported record type %r" % r["type"])
            self.names.setdefault(name, []).append(RR(name, getattr(QTYPE, r["type"]), ttl=self.ttl, rdata=rdata))

    def resolve(self, request, handler):
        reply = request.reply()  # authoritative answer, recursion not available
        reply.header.ra = 0
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        records = self.names.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            if q.qname.matchSuffix(self.origin):
                reply.add_auth(self.soa)
            return reply
        for rr in records:
            if q.qtype in (rr.rtype, QTYPE.ANY):
                reply.add_answer(rr)
        if not reply.rr:
            reply.add_auth(self.soa)
        return reply


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True, help="a loopback address (127.0.0.0/8)")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--zone", required=True)
    args = p.parse_args()
    if not args.addr.startswith("127."):
        sys.exit("dns_server: refusing to listen outside the loopback range")
    resolver = ZoneResolver(json.loads(open(args.zone).read()))
    logger = DNSLogger("-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    servers = [DNSServer(resolver, address=args.addr, port=args.port, tcp=tcp, logger=logger) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    print("dns stand-in (pid %d) serving %s on %s:%d (udp+tcp)" % (os.getpid(), resolver.origin, args.addr, args.port), flush=True)

    def stop(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
