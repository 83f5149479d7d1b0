"""The few rtnetlink requests sandbox networking makes, spoken directly on a netlink socket.

It owns the encoding of: a veth pair with its peer created in another network namespace, an IPv4
address, a link up, a link's bridge master, a link route and a default route.
Each is one request acknowledged by the kernel (an error raises `NetlinkError` with the kernel's
errno), on a socket of the calling thread's network namespace: the namespace the request acts in is
the one the thread is in when it opens the socket. Doing this in-process instead of running `ip`
takes a namespace's preparation from ~10 ms to about one, which is what lets a restored (SnapStart)
environment get its interface on the restore path. It never decides addresses or names.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID, IFLA_NET_NS_FD = 3, 10, 18, 19, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_SCOPE_LINK = 253
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST, RTNH_F_ONLINK = 254, 3, 1, 4
NLA_F_NESTED = 0x8000


class NetlinkError(OSError):
    pass


def _attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """One rtnetlink socket, in the network namespace of the thread that opened it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, kind: int, flags: int, body: bytes) -> None:
        self._seq += 1
        header = struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self._seq, 0)
        self._sock.send(header + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if mtype == NLMSG_ERROR and seq == self._seq:
                    (error,) = struct.unpack_from("=i", data, offset + 16)
                    if error:
                        raise NetlinkError(-error, os.strerror(-error))
                    return
                offset += max(length, 16)

    # -- links --------------------------------------------------------------------------------------

    def add_veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair: `name` here, `peer` created directly in the namespace `peer_netns_fd`."""
        peer_info = (_ifinfo() + _attr(IFLA_IFNAME, _name(peer))
                     + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        info = _attr(IFLA_INFO_KIND, _name("veth")) + _attr(
            IFLA_INFO_DATA | NLA_F_NESTED, _attr(VETH_INFO_PEER | NLA_F_NESTED, peer_info))
        body = _ifinfo() + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_up(self, name: str) -> None:
        self._request(RTM_NEWLINK, 0, _ifinfo(socket.if_nametoindex(name), IFF_UP, IFF_UP))

    def set_master(self, name: str, master: str) -> None:
        master_index = struct.pack("=I", socket.if_nametoindex(master))
        body = _ifinfo(socket.if_nametoindex(name)) + _attr(IFLA_MASTER, master_index)
        self._request(RTM_NEWLINK, 0, body)

    # -- addresses and routes -----------------------------------------------------------------------

    def add_address(self, name: str, address: ipaddress.IPv4Address, prefixlen: int) -> None:
        packed = address.packed
        body = (struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, 0, socket.if_nametoindex(name))
                + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, name: str, gateway: ipaddress.IPv4Address) -> None:
        """0.0.0.0/0 via `gateway` on `name`, "onlink": usable before the link has carrier."""
        body = (struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST,
                            RTNH_F_ONLINK)
                + _attr(RTA_GATEWAY, gateway.packed) + _attr(RTA_OIF, struct.pack("=I", socket.if_nametoindex(name))))
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_link_route(self, destination: ipaddress.IPv4Network, name: str) -> None:
        """`destination` reached directly on link `name` (scope link, no gateway)."""
        body = (struct.pack("=BBBBBBBBI", socket.AF_INET, destination.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                            RT_SCOPE_LINK, RTN_UNICAST, 0)
                + _attr(RTA_DST, destination.network_address.packed)
                + _attr(RTA_OIF, struct.pack("=I", socket.if_nametoindex(name))))
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)
