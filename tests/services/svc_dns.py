"""Launcher plug-in: the world's DNS server (dns_server.py) for the zone keyshift.test, on
port 53 of a loopback address of its own (127.77.0.N, the first one free), serving the
records earlier plug-ins registered in `ctx.dns_records` (mongodb-srv: SRV, TXT, A) and
NXDOMAIN for everything else. Nothing is forwarded and the machine's resolver is left
alone: `tests/services/with-dns CMD ...` runs one command in a private mount namespace
whose /etc/resolv.conf names this server (needs root or user namespaces). Port 53 needs
root: without it the service is skipped (and the DNS tests with it); as root a failure
to start fails `up`.

Env it exports:
    KS_DNS_ADDR         127.77.0.N (port 53, UDP and TCP)
    KS_DNS_ZONE         keyshift.test
    KS_DNS_RESOLV_CONF  the resolv.conf with-dns mounts
    KS_WITH_DNS         path of tests/services/with-dns
"""

from __future__ import annotations

import json
import os
import socket
import sys

NAME = "dns"
ORDER = 40  # after every plug-in that registers records
ZONE = "keyshift.test"


def _free_address() -> str:
    for n in range(1, 255):
        addr = "127.77.0.%d" % n
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((addr, 53))
        except OSError:
            continue
        return addr
    raise RuntimeError("no free loopback address with port 53 in 127.77.0.0/24 (port 53 needs root)")


def _wait_dns(addr: str, proc, timeout: float = 20.0) -> None:
    import time

    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("dns server exited with %s" % proc.returncode)
        try:
            dns.query.udp(dns.message.make_query("ready." + ZONE, "A"), addr, timeout=0.5)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("dns server on %s:53 did not answer" % addr)


def start(ctx) -> dict[str, str]:
    try:
        addr = _free_address()
    except RuntimeError as e:
        if os.geteuid() == 0:
            raise
        # port 53 is privileged: without root the world runs without DNS (its tests skip)
        print("up: dns not started: %s" % e, file=sys.stderr)
        return {}
    d = ctx.run_dir / "dns"
    d.mkdir(exist_ok=True)
    zone = d / "zone.json"
    zone.write_text(json.dumps({"origin": ZONE, "ttl": 60, "records": getattr(ctx, "dns_records", [])}, indent=1))
    resolv = d / "resolv.conf"
    resolv.write_text("# the test world's DNS (tests/services/svc_dns.py)\nnameserver %s\noptions timeout:1 attempts:2\n" % addr)
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "dns_server.py"), "--addr", addr, "--zone", str(zone)])
    _wait_dns(addr, proc)
    return {
        "KS_DNS_ADDR": addr,
        "KS_DNS_ZONE": ZONE,
        "KS_DNS_RESOLV_CONF": str(resolv),
        "KS_WITH_DNS": str(ctx.services_dir / "with-dns"),
    }
