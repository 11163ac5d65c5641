"""Proves the world's DNS (svc_dns.py) and the seedlist cluster (svc_mongodb_srv.py): the
server answers the zone's SRV, TXT and A records over UDP and TCP and NXDOMAIN for
everything else (it forwards nothing); under `with-dns` PyMongo resolves
`mongodb+srv://cluster0.keyshift.test`, discovers replica set ks2 at
node0.cluster0.keyshift.test, verifies that name in the certificate, authenticates and
reads back what it wrote. The machine's own resolver is left alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest


@pytest.fixture(scope="module")
def env(world):
    if "KS_DNS_ADDR" not in world or "KS_MONGODB_SRV_URI" not in world:
        pytest.skip("this world has no dns / mongodb-srv services")
    return world


def _ask(env, name: str, rdtype: str, tcp: bool = False):
    q = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(q, env["KS_DNS_ADDR"], port=53, timeout=5)


@pytest.mark.parametrize("tcp", [False, True])
def test_zone_records(env, tcp):
    port = int(env["KS_MONGODB_SRV_PORT"])
    r = _ask(env, "_mongodb._tcp.cluster0.keyshift.test", "SRV", tcp)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    (srv,) = r.answer[0]
    assert (srv.priority, srv.weight, srv.port, str(srv.target)) == (0, 0, port, "node0.cluster0.keyshift.test.")
    (txt,) = _ask(env, "cluster0.keyshift.test", "TXT", tcp).answer[0]
    assert b"".join(txt.strings) == b"replicaSet=ks2&authSource=admin"
    (a,) = _ask(env, "NODE0.cluster0.keyshift.test", "A", tcp).answer[0]  # names are case-insensitive
    assert a.address == "127.0.0.1"
    empty = _ask(env, "node0.cluster0.keyshift.test", "AAAA", tcp)
    assert empty.rcode() == dns.rcode.NOERROR and not empty.answer


@pytest.mark.parametrize("name", ["pypi.org", "example.com", "other.keyshift.test", "localhost"])
def test_anything_else_is_nxdomain(env, name):
    for rdtype in ("A", "SRV", "TXT"):
        r = _ask(env, name, rdtype)
        assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer


def test_with_dns_changes_only_the_command_it_runs(env):
    before = Path("/etc/resolv.conf").read_text()
    out = subprocess.run([env["KS_WITH_DNS"], "cat", "/etc/resolv.conf"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "nameserver %s" % env["KS_DNS_ADDR"] in out.stdout
    assert Path("/etc/resolv.conf").read_text() == before
    hosts = subprocess.run([env["KS_WITH_DNS"], "getent", "hosts", "node0.cluster0.keyshift.test"],
                           capture_output=True, text=True, timeout=30)
    assert hosts.returncode == 0 and hosts.stdout.split()[0] == "127.0.0.1"
    outside = subprocess.run([env["KS_WITH_DNS"], "getent", "hosts", "pypi.org"], capture_output=True, text=True, timeout=30)
    assert outside.returncode == 2  # not found: nothing was forwarded


_SRV_CLIENT = """
import json, sys
from pymongo import MongoClient
c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
c.srv_probe.t.insert_one({"_id": 1, "via": "srv"})
doc = c.srv_probe.t.find_one({"_id": 1})
td = c.topology_description
(sd,) = td.server_descriptions().values()
log = c.admin.command({"ksCommandLog": 1, "ns": "srv_probe.t", "commands": ["insert"]})["commands"][-1]
c.drop_database("srv_probe")
print(json.dumps({"doc": doc, "set": td.replica_set_name, "type": td.topology_type_name,
                  "address": "%s:%d" % sd.address, "user": log["user"],
                  "options": {k: str(v) for k, v in c.options._options.items() if k in ("replicaset", "authsource", "tls")}}))
"""


def test_pymongo_through_the_seedlist(env):
    out = subprocess.run([env["KS_WITH_DNS"], sys.executable, "-c", _SRV_CLIENT, env["KS_MONGODB_SRV_URI"]],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["doc"] == {"_id": 1, "via": "srv"}
    assert (r["set"], r["type"]) == ("ks2", "ReplicaSetWithPrimary")
    assert r["address"] == env["KS_MONGODB_SRV_NODE"]
    assert r["user"] == {"user": "keyshift", "db": "admin", "mechanism": "SCRAM-SHA-256"}
    assert r["options"] == {"replicaset": "ks2", "authsource": "admin", "tls": "True"}

