"""The packet filter policy of sandbox networks, as nftables script text.

It owns what a sandbox may send: the rules of Hearth's egress bridge (masquerade to the host's routes,
forbidden destinations refused, spoofed sources dropped, a connection-tracking limit per environment,
byte counters per environment address) and, for VPC networks, the security groups' egress rules.
It only builds text: `network.py` hands it to the `nft` command (one atomic transaction per change).
It never builds a rule from a string a caller did not validate: names and addresses come from
`ipaddress` objects and Hearth's own naming, ports from integers.

Why the `nft` command and a script ruleset rather than a Python binding: Debian's `python3-nftables`
(libnftables' ctypes wrapper) lives in the system interpreter's dist-packages, not in Hearth's
virtualenv, and PyPI carries only unofficial copies of it. The command is the standard, maintained
front end; a whole table is loaded in one atomic transaction, and counters are read back as JSON
(`nft -j`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Destinations no sandbox may reach through any network: link-local (the cloud metadata service
# lives at 169.254.169.254), loopback, "this network", multicast and limited broadcast.
FORBIDDEN = ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32")
# Packets per second one environment may send through the host (a flood beyond it is dropped, so that
# it cannot take the host's forwarding from the others); far above what a function's real traffic needs.
FLOOD_PPS = 20000
FLOOD_BURST = 2000
_FLOOD_SET = "  set flood { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 10s; }"


def _flood_rule(iif: str) -> str:
    return (f"iifname {iif} update @flood {{ ip saddr limit rate over {FLOOD_PPS}/second burst {FLOOD_BURST} "
            "packets } drop")


@dataclass(frozen=True)
class EgressPolicy:
    """Hearth's own bridge: every environment without VpcConfig has a port on it."""

    table: str  # the instance's table name, in both the inet and the bridge family
    bridge: str
    port_glob: str  # every environment port of this instance matches it ("h1234e*")
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ports: tuple[tuple[str, ipaddress.IPv4Address], ...]  # (port, the only source address it may use)
    conn_limit: int  # concurrent tracked connections per environment
    also_forbidden: tuple[ipaddress.IPv4Network, ...] = ()  # other Hearth networks (VPC subnets)


def _elements(items: Iterable[str]) -> str:
    joined = ", ".join(items)
    return "{ " + joined + " }" if joined else ""


def egress_ruleset(p: EgressPolicy) -> str:
    """The instance's tables, replaced as a whole (declare, flush, refill: one transaction)."""
    forbidden = [*FORBIDDEN, str(p.subnet)]
    ports = _elements(f'"{port}" . {addr}' for port, addr in p.ports)
    br = f'"{p.bridge}"'
    glob = f'"{p.port_glob}"'
    lines = [
        f"table inet {p.table} {{}}",
        f"flush table inet {p.table}",
        f"table inet {p.table} {{",
        # One element per environment address: the per-environment connection limit, and the
        # bytes it sent and received (read for /_hearth/metrics).
        "  set connlimit { type ipv4_addr; size 65535; flags dynamic; }",
        "  set tx { type ipv4_addr; size 65535; flags dynamic; counter; }",
        "  set rx { type ipv4_addr; size 65535; flags dynamic; counter; }",
        _FLOOD_SET,
        # The VPC subnets Hearth serves (added as functions are attached to them): a function outside
        # a VPC never reaches a VPC's private hosts, as on AWS.
        "  set vpc_subnets { type ipv4_addr; flags interval; "
        + (f"elements = {_elements(str(n) for n in p.also_forbidden)}; " if p.also_forbidden else "") + "}",
        # Traffic from a sandbox to the host itself (any of its addresses: the bridge's gateway,
        # the host's own interfaces, services bound to 0.0.0.0, Hearth's ports): refused at once.
        # Functions reach Hearth's AWS API through the proxy inside their own namespace instead.
        "  chain input {",
        "    type filter hook input priority -10; policy accept;",
        f"    iifname {br} meta l4proto tcp reject with tcp reset",
        f"    iifname {br} reject with icmpx admin-prohibited",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority -10; policy accept;",
        f"    iifname {br} ip saddr != {p.subnet} drop",
        f"    iifname {br} meta nfproto ipv6 drop",
        f"    {_flood_rule(br)}",
        f"    iifname {br} update @tx {{ ip saddr }}",
        f"    oifname {br} update @rx {{ ip daddr }}",
        f"    oifname {br} ct state established,related accept",
        f"    oifname {br} drop",
        f"    iifname {br} ct state established,related accept",
        f"    iifname {br} ip daddr {_elements(forbidden)} reject with icmpx admin-prohibited",
        f"    iifname {br} ip daddr @vpc_subnets reject with icmpx admin-prohibited",
        f"    iifname {br} ct state new add @connlimit {{ ip saddr ct count over {p.conn_limit} }} "
        "reject with icmpx admin-prohibited",
        f"    iifname {br} accept",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        f"    ip saddr {p.subnet} oifname != {br} masquerade",
        "  }",
        "}",
        f"table bridge {p.table} {{}}",
        f"flush table bridge {p.table}",
        f"table bridge {p.table} {{",
        "  set ports { type ifname . ipv4_addr; " + (f"elements = {ports}; " if ports else "") + "}",
        "  counter spoofed {}",
        # Environment to environment on the same bridge: never (the ports are also isolated).
        "  chain forward {",
        "    type filter hook forward priority -10; policy accept;",
        f"    iifname {glob} drop",
        "  }",
        # Spoofing: a port may only send from its own address (IPv4 and ARP); no IPv6 at all.
        "  chain input {",
        "    type filter hook input priority -10; policy accept;",
        f"    iifname {glob} ether type ip6 drop",
        f'    iifname {glob} ether type ip iifname . ip saddr != @ports counter name "spoofed" drop',
        f'    iifname {glob} ether type arp iifname . arp saddr ip != @ports counter name "spoofed" drop',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def delete_tables(table: str) -> str:
    return "".join(f"table {family} {table} {{}}\ndelete table {family} {table}\n" for family in ("inet", "bridge"))


# -- VPC networks: security group egress --------------------------------------------------------

@dataclass(frozen=True)
class SgRule:
    """One egress permission of a security group, validated by the EC2 service."""

    protocol: str  # "-1" (all), "tcp", "udp", "icmp" or a protocol number
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # referenced security group ids: their members' addresses


_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp"}


def _match(rule: SgRule, group_sets: dict[str, str]) -> list[str]:
    """The nft match expressions of one rule: one per destination (a CIDR or a group's set)."""
    proto = _PROTOCOL_NAMES.get(rule.protocol, rule.protocol).lower()
    if proto in ("-1", "all"):
        l4 = ""
    elif proto in ("tcp", "udp"):
        lo = 0 if rule.from_port is None or rule.from_port < 0 else rule.from_port
        hi = 65535 if rule.to_port is None or rule.to_port < 0 else rule.to_port
        l4 = f"{proto} dport {lo}-{hi} " if (lo, hi) != (0, 65535) else f"meta l4proto {proto} "
    elif proto == "icmp":
        l4 = "meta l4proto icmp "
    elif proto.isdigit():
        l4 = f"meta l4proto {int(proto)} "
    else:
        return []
    out: list[str] = []
    for cidr in rule.cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version == 4:
            out.append(f"ip daddr {net} {l4}".rstrip())
    for group in rule.groups:
        if group in group_sets:
            out.append(f"ip daddr @{group_sets[group]} {l4}".rstrip())
    return out


@dataclass(frozen=True)
class VpcAttachment:
    """One prepared VPC interface: its port, its address, its security groups, and the operator's
    bridge its subnet maps to (the only way out it has)."""

    port: str
    address: ipaddress.IPv4Address
    groups: tuple[str, ...]
    bridge: str


def vpc_ruleset(table: str, port_glob: str, attachments: Sequence[VpcAttachment],
                groups: dict[str, tuple[SgRule, ...]], conn_limit: int) -> str:
    """The instance's VPC table. VPC ports are routed (the host proxies ARP between a port and its
    subnet's bridge, see network.py), so the inet family sees every packet with connection tracking.
    Per environment port: only its own source address, only out through its subnet's bridge, only
    what one of its groups' egress rules allows, replies always; nothing to the host itself.

    Reloaded on every change (a port prepared, a group's rules changed) without flushing the table:
    the chains and the membership sets are refilled, the per-address counters and connection counts
    (`tx`, `rx`, `connlimit`) and the `spoofed` counter keep running."""
    set_names = {g: "sg_" + g.replace("-", "_") for g in groups}
    members: dict[str, list[str]] = {g: [] for g in groups}
    for a in attachments:
        for g in a.groups:
            if g in members:
                members[g].append(str(a.address))
    q = chr(34)
    t = f"inet {table}"
    lines = [
        f"table {t} {{",
        "  set ports { type ifname . ipv4_addr; }",
        "  set routes { type ifname . ifname; }",
        "  set connlimit { type ipv4_addr; size 65535; flags dynamic; }",
        "  set tx { type ipv4_addr; size 65535; flags dynamic; counter; }",
        "  set rx { type ipv4_addr; size 65535; flags dynamic; counter; }",
        "  counter spoofed {}",
        _FLOOD_SET,
        *(f"  set {name} {{ type ipv4_addr; }}" for name in set_names.values()),
        "  chain forward { type filter hook forward priority -10; policy accept; }",
        "  chain input { type filter hook input priority -10; policy accept; }",
        "}",
        f"flush chain {t} forward",
        f"flush chain {t} input",
        f"flush set {t} ports",
        f"flush set {t} routes",
        *(f"flush set {t} {name}" for name in set_names.values()),
    ]
    if attachments:
        lines.append(f"add element {t} ports {_elements(f'{q}{a.port}{q} . {a.address}' for a in attachments)}")
        lines.append(f"add element {t} routes {_elements(f'{q}{a.port}{q} . {q}{a.bridge}{q}' for a in attachments)}")
    for g, name in set_names.items():
        if members[g]:
            lines.append(f"add element {t} {name} {_elements(members[g])}")
    glob = f'"{port_glob}"'
    forward = [
        f"oifname {glob} update @rx {{ ip daddr }}",
        f"oifname {glob} ct state established,related accept",
        f"oifname {glob} drop",
        f"iifname {glob} meta nfproto ipv6 drop",
        f'iifname {glob} iifname . ip saddr != @ports counter name "spoofed" drop',
        _flood_rule(glob),
        f"iifname {glob} update @tx {{ ip saddr }}",
        f"iifname {glob} ct state established,related accept",
        f"iifname {glob} ip daddr {{ {', '.join(FORBIDDEN)} }} reject with icmpx admin-prohibited",
        # A private subnet: its own segment and nothing else (no way to the host's other routes).
        f"iifname {glob} iifname . oifname != @routes reject with icmpx no-route",
        f"iifname {glob} ct state new add @connlimit {{ ip saddr ct count over {conn_limit} }} "
        "reject with icmpx admin-prohibited",
    ]
    for g, rules in groups.items():
        for rule in rules:
            for match in _match(rule, set_names):
                forward.append(f"iifname {glob} ip saddr @{set_names[g]} {match} accept")
    # Nothing an egress rule allows: refused at once (a TCP reset or an ICMP error), never a hang.
    forward += [f"iifname {glob} meta l4proto tcp reject with tcp reset",
                f"iifname {glob} reject with icmpx admin-prohibited"]
    # The host itself is not a VPC destination.
    inbound = [f"iifname {glob} meta l4proto tcp reject with tcp reset",
               f"iifname {glob} reject with icmpx admin-prohibited"]
    lines += [f"add rule {t} forward {rule}" for rule in forward]
    lines += [f"add rule {t} input {rule}" for rule in inbound]
    return "\n".join(lines) + "\n"
