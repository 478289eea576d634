"""An address of this machine that ML Commons' batch status and cancel calls may reach.

ML Commons 3.6 refuses connector calls to private addresses (127.0.0.0/8, 10/8, 172.16/12, 192.168/16,
169.254/16, site-local, loopback, any-local: MLValidatableAsyncHttpClient) unless
`plugins.ml_commons.connector.private_ip_enabled` is set, and the local node sets it. But the executors that
GET /_plugins/_ml/tasks/<id> and POST .../_cancel run for a batch task (GetTaskTransportAction,
CancelBatchJobTransportAction) never pass that setting on, so their call to 127.0.0.1 fails with "Remote
inference host name has private ip address" whatever the node says. The batch connector therefore reaches
the AWS emulator at an address of this machine that the rule does not call private (an IPv6 ULA such as
fd00::/8, or an IPv4 outside those ranges), on which the emulator also listens, answering only this machine
(local/aws/server.py). OSBATCH_NODE_FACING_HOST names one explicitly; with none, the ml-commons backend cannot
run locally and says why.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from pathlib import Path

ENV = "OSBATCH_NODE_FACING_HOST"
FIB_TRIE = Path("/proc/net/fib_trie")
IF_INET6 = Path("/proc/net/if_inet6")
# The IPv4 ranges MLValidatableAsyncHttpClient.isPrivateIPv4 names (plus Java's site-local, the same three).
PRIVATE_V4 = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
)
SITE_LOCAL_V6 = ipaddress.ip_network("fec0::/10")  # Java's Inet6Address.isSiteLocalAddress


def private_to_ml_commons(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """ML Commons' rule: Java's isSiteLocal/isLoopback/isAnyLocal plus its own IPv4 ranges."""
    if address.is_loopback or address.is_unspecified:
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return any(address in network for network in PRIVATE_V4)
    return address in SITE_LOCAL_V6


def local_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """This machine's own addresses (Linux: the kernel's local routes and IPv6 interface addresses)."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    if FIB_TRIE.exists():
        lines = FIB_TRIE.read_text().splitlines()
        for line, following in itertools.pairwise(lines):
            if "/32 host LOCAL" in following and "|--" in line:
                found.append(ipaddress.IPv4Address(line.split("|--")[1].strip()))
    if IF_INET6.exists():
        for row in IF_INET6.read_text().splitlines():
            raw = row.split()[0]
            found.append(ipaddress.IPv6Address(":".join(raw[i : i + 4] for i in range(0, 32, 4))))
    return list(dict.fromkeys(found))


def node_facing_host() -> str | None:
    """The address to use, IPv4 first; None when this machine has none ML Commons would call."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    candidates = [a for a in local_addresses() if not private_to_ml_commons(a) and not a.is_link_local]
    candidates.sort(key=lambda address: address.version)
    return str(candidates[0]) if candidates else None


def url_host(host: str) -> str:
    """The host as it goes into a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


def is_local(peer: str) -> bool:
    """Whether a connection comes from this machine, so the node-facing listener serves nothing else."""
    try:
        address = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address in local_addresses()
