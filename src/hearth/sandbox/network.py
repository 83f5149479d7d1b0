"""Sandbox networks: Hearth's egress bridge, the operator's VPC networks, and pools of network
namespaces prepared ahead of need.

It owns, for one server instance: the egress bridge (named after the instance) with its address
translation to the host's routes; the nftables tables that enforce what sandboxes may reach
(`netpolicy.py` writes them); and, per network, a pool of network namespaces each already holding a
veth interface with its address, its routes and `lo` up. A sandbox's init joins one with setns(2)
(see zygote.py) instead of creating an empty one, so the network costs nothing on the invoke path.
A SnapStart clone cannot join a namespace owned by the host (it isolates itself in a user namespace
of its own, with no privilege over the host's): its interface is created directly in the clone's own
network namespace right after the clone reports (`attach`, about a millisecond).

It never lets an address or a port name be reused while the previous holder's interface still
exists, never touches a table, bridge or interface that is not named after its own instance (the
operator's VPC bridges are only given ports), and never leaves them behind on close.

Namespaces are made in dedicated threads (a low-priority one keeps the pools full, another serves
misses): unshare(CLONE_NEWNET) there changes that thread's network namespace only; the thread speaks
rtnetlink (`netlink.py`) from inside, then returns to the host's namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hearth.sandbox import netpolicy
from hearth.sandbox.netlink import Rtnl

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
EGRESS = "egress"
DEFAULT_POOL_SIZE = 4
MAX_POOL_SIZE = 16
POOL_GROWTH = 2
REFILL_NICE = 10
DEFAULT_CONN_LIMIT = 1024
# Where instances' egress subnets are picked from (a /22 each: 1,021 environments), skipping any
# that a route of the host already covers (another instance, a container network).
EGRESS_SUPERNET = ipaddress.IPv4Network("10.180.0.0/14")
EGRESS_PREFIX = 22
CMD_TIMEOUT_S = 10.0

_libc = ctypes.CDLL(None, use_errno=True)


def _lower_priority() -> None:
    """The refill thread's niceness (Linux: per thread, by its thread id)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REFILL_NICE)


class NetworkUnavailable(Exception):
    """Sandbox networking cannot be set up here; the message says why."""


@dataclass(frozen=True)
class VpcNetwork:
    """An operator-named host network that one or more EC2 subnets map to (a Linux bridge)."""

    bridge: str
    subnet: ipaddress.IPv4Network  # the EC2 subnet's CIDR: environments get addresses from it


@dataclass
class Lease:
    """One prepared network namespace, handed to exactly one sandbox."""

    key: str  # EGRESS, or a VPC configuration's key
    slot: int
    port: str  # the host-side veth name
    address: ipaddress.IPv4Address
    fd: int = -1  # the namespace (closed once a sandbox joined it)
    owner: str = ""  # the function the bytes are counted for

    def close_fd(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _run(argv: list[str], stdin: str = "", pass_fds: tuple[int, ...] = ()) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=CMD_TIMEOUT_S,
                          pass_fds=pass_fds, check=False)
    if proc.returncode != 0:
        raise NetworkUnavailable(f"{' '.join(argv[:3])}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def nft(script: str) -> None:
    _run(["nft", "-f", "-"], script)


def _link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def _host_routes() -> list[ipaddress.IPv4Network]:
    out = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    nets: list[ipaddress.IPv4Network] = []
    for r in out:
        dst = r.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def pick_subnet(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    for candidate in EGRESS_SUPERNET.subnets(new_prefix=EGRESS_PREFIX):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise NetworkUnavailable(f"no free /{EGRESS_PREFIX} left in {EGRESS_SUPERNET} for the egress bridge")


@dataclass
class _Net:
    """One network sandboxes get ports on: its addressing and its pool."""

    key: str
    bridge: str
    port_prefix: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None
    first_host: int  # slots are host numbers within the subnet
    last_host: int
    routed: bool  # VPC: the host routes between the port and the operator's bridge (see _prepare)
    groups: tuple[str, ...] = ()
    ready: list[Lease] = field(default_factory=list)
    live: dict[int, Lease] = field(default_factory=dict)  # slot -> lease handed to a sandbox
    released: list[Lease] = field(default_factory=list)  # waiting for their interface to go
    pending: set[int] = field(default_factory=set)  # slots being prepared
    target: int = DEFAULT_POOL_SIZE

    def port(self, slot: int) -> str:
        return f"{self.port_prefix}{slot:x}"

    def address(self, slot: int) -> ipaddress.IPv4Address:
        return self.subnet.network_address + slot


class NetworkPool:
    """The instance's networks and their prepared namespaces."""

    def __init__(self, instance: str, egress_subnet: ipaddress.IPv4Network, *, pool_size: int,
                 conn_limit: int, host_ns_fd: int) -> None:
        tag = instance[-6:]
        self._instance = instance
        self._table = f"hearth_{instance}"
        self._vpc_table = f"hearth_{instance}_vpc"
        self._bridge = f"h{tag}br"
        self._egress_glob = f"h{tag}e*"
        self._vpc_glob = f"h{tag}v*"
        self._conn_limit = conn_limit
        self._pool_size = pool_size
        self._host_ns_fd = host_ns_fd
        gateway = egress_subnet.network_address + 1
        self._nets: dict[str, _Net] = {EGRESS: _Net(
            EGRESS, self._bridge, f"h{tag}e", egress_subnet, gateway, 2, egress_subnet.num_addresses - 2,
            routed=False, target=pool_size)}
        self._vpc_counter = 0
        self._bridges_set_up: dict[str, ipaddress.IPv4Network | None] = {}  # bridge -> the route we added
        self._proxy_arp_before: dict[str, str] = {}
        self._isolated: set[str] = set()
        self._forbidden: set[ipaddress.IPv4Network] = set()  # VPC subnets, in the egress table's set
        self._vpc_rules: dict[str, tuple[netpolicy.SgRule, ...]] = {}
        # Two threads make the namespaces (each one's own network namespace changes while it works):
        # the refill thread runs at a low priority, so that keeping the pools full never takes CPU
        # from environments starting (the kernel work of making a namespace is charged to it); the
        # urgent one serves pool misses, which an environment start is waiting for.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-netns",
                                          initializer=_lower_priority)
        self._urgent = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-netns-urgent")
        self._lock = threading.Lock()  # _nets' lists, touched by the loop and the thread
        self._wake = asyncio.Event()
        self._refill: asyncio.Task[None] | None = None
        self._closed = False
        self._bytes: dict[tuple[str, str], int] = {}  # (owner, "sent"|"received") -> bytes
        self._seen: dict[tuple[str, str], int] = {}  # ("tx"|"rx", address) -> counter last read
        self.misses = 0  # sandboxes that found their pool empty and waited for a namespace

    # -- opening and closing ------------------------------------------------------------------------

    @classmethod
    async def open(cls, instance: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                   conn_limit: int = DEFAULT_CONN_LIMIT) -> NetworkPool:
        """Probe and set up the egress bridge and its policy. Raises NetworkUnavailable with the reason."""
        if os.geteuid() != 0:
            raise NetworkUnavailable("the server does not run as root")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise NetworkUnavailable(f"the `{tool}` command is missing (Debian: iproute2, nftables)")
        host_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pool = await asyncio.to_thread(cls._setup, instance, pool_size, conn_limit, host_ns_fd)
        except BaseException:
            os.close(host_ns_fd)
            raise
        pool._refill = asyncio.create_task(pool._refill_loop())
        return pool

    @classmethod
    def _setup(cls, instance: str, pool_size: int, conn_limit: int, host_ns_fd: int) -> NetworkPool:
        tag = instance[-6:]
        bridge = f"h{tag}br"
        cls.sweep_orphans()
        cls._remove_leftovers(instance, bridge)
        _claim(instance)
        taken = _host_routes()
        try:
            for _ in range(8):
                subnet = pick_subnet(taken)
                gateway = subnet.network_address + 1
                _run(["ip", "-batch", "-"], f"link add {bridge} type bridge\n"
                     f"addr add {gateway}/{subnet.prefixlen} dev {bridge}\nlink set {bridge} up\n")
                # Another server may have picked the same range at the same moment: the one whose
                # bridge is not the only way there moves on to the next range.
                routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all", str(subnet)]) or "[]")
                if all(r.get("dev") == bridge for r in routes):
                    break
                _run(["ip", "link", "del", bridge])
                taken.append(subnet)
            else:
                raise NetworkUnavailable("no free range for the egress bridge after 8 tries")
        except (NetworkUnavailable, OSError) as exc:
            cls._remove_leftovers(instance, bridge)
            raise NetworkUnavailable(f"cannot set up the egress bridge: {exc}") from exc
        pool = cls(instance, subnet, pool_size=pool_size, conn_limit=conn_limit, host_ns_fd=host_ns_fd)
        try:
            # Routing between the bridge and the host's interfaces (the kernel's global switch; left on
            # at close, since other software on the host may rely on it too).
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
            pool._load_egress_policy()
        except (NetworkUnavailable, OSError) as exc:
            cls._remove_leftovers(instance, bridge)
            raise NetworkUnavailable(f"cannot set up the egress bridge: {exc}") from exc
        return pool

    @classmethod
    def sweep_orphans(cls) -> list[str]:
        """Remove what servers killed and never started again left on the host: each server records
        itself (pid and start time) under OWNERS while its network is up; a record whose process is gone
        names an instance whose bridge, ports and tables nobody will remove otherwise. The instances swept."""
        swept = []
        with contextlib.suppress(FileNotFoundError):
            for record in OWNERS.iterdir():
                if _owner_alive(record):
                    continue
                cls.remove_leftovers(record.name)
                record.unlink(missing_ok=True)
                swept.append(record.name)
        if swept:
            log.info("removed the networks of %d server(s) that were killed: %s", len(swept), ", ".join(swept))
        return swept

    @classmethod
    def remove_leftovers(cls, instance: str) -> None:
        """What a killed server of `instance` left on the host (bridge, ports, tables), for one that will
        not start again on its data directory (a start removes them itself)."""
        cls._remove_leftovers(instance, f"h{instance[-6:]}br")

    @staticmethod
    def _remove_leftovers(instance: str, bridge: str) -> None:
        """A killed server's bridge, ports and tables (its namespaces died with its sandboxes)."""
        if _link_exists(bridge):
            with contextlib.suppress(NetworkUnavailable):
                _run(["ip", "link", "del", bridge])
        tag = instance[-6:]
        for name in os.listdir("/sys/class/net"):
            if name.startswith((f"h{tag}e", f"h{tag}v")):
                with contextlib.suppress(NetworkUnavailable):
                    _run(["ip", "link", "del", name])
        for table in (f"hearth_{instance}", f"hearth_{instance}_vpc"):
            with contextlib.suppress(NetworkUnavailable):
                nft(netpolicy.delete_tables(table))

    def _load_egress_policy(self) -> None:
        egress = self._nets[EGRESS]
        assert egress.gateway is not None
        ports = tuple((egress.port(s), egress.address(s)) for s in range(egress.first_host, egress.last_host + 1))
        nft(netpolicy.egress_ruleset(netpolicy.EgressPolicy(
            table=self._table, bridge=self._bridge, port_glob=self._egress_glob, subnet=egress.subnet,
            gateway=egress.gateway, ports=ports, conn_limit=self._conn_limit,
            also_forbidden=tuple(n.subnet for n in self._nets.values() if n.key != EGRESS))))

    async def close(self) -> None:
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        with self._lock:
            for net in self._nets.values():
                for lease in net.ready:
                    lease.close_fd()
                net.ready.clear()
        self._thread.shutdown(wait=True)
        self._urgent.shutdown(wait=True)
        await asyncio.to_thread(self._remove_leftovers, self._instance, self._bridge)
        await asyncio.to_thread(self._restore_vpc_bridges)
        _release(self._instance)
        os.close(self._host_ns_fd)

    def _restore_vpc_bridges(self) -> None:
        """The operator's bridges as they were: our routes gone, proxy ARP back to its old value."""
        for bridge, subnet in self._bridges_set_up.items():
            if subnet is not None and _link_exists(bridge):
                with contextlib.suppress(NetworkUnavailable):
                    _run(["ip", "route", "del", str(subnet), "dev", bridge])
        for bridge, value in self._proxy_arp_before.items():
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv4/conf/{bridge}/proxy_arp").write_text(value + "\n")

    # -- facts ----------------------------------------------------------------------------------------

    @property
    def egress_subnet(self) -> ipaddress.IPv4Network:
        return self._nets[EGRESS].subnet

    @property
    def bridge(self) -> str:
        return self._bridge

    def statistics(self) -> dict[str, object]:
        with self._lock:
            return {
                "egress_subnet": str(self.egress_subnet),
                "ready": {k: len(n.ready) for k, n in self._nets.items()},
                "live": {k: len(n.live) for k, n in self._nets.items()},
                "misses": self.misses,
            }

    # -- VPC networks ---------------------------------------------------------------------------------

    def add_vpc(self, key: str, network: VpcNetwork, groups: tuple[str, ...],
                rules: dict[str, tuple[netpolicy.SgRule, ...]]) -> None:
        """Prepare a pool for one VPC configuration (a function's subnet and security groups), as AWS
        creates a function's Hyperplane interface while it is Pending. Idempotent per key; the rules
        replace the groups' earlier ones."""
        if not _link_exists(network.bridge):
            raise NetworkUnavailable(f"the host network {network.bridge!r} does not exist")
        with self._lock:
            self._vpc_rules.update(rules)
            if key not in self._nets:
                self._vpc_counter += 1
                tag = self._instance[-6:]
                # Addresses from the top of the subnet down to its middle: AWS reserves the first four
                # and the last; the operator's own hosts usually sit low.
                last = network.subnet.num_addresses - 2
                first = max(4, network.subnet.num_addresses // 2)
                self._nets[key] = _Net(key, network.bridge, f"h{tag}v{self._vpc_counter:x}x", network.subnet,
                                       None, first, last, routed=True,
                                       groups=groups, target=max(1, self._pool_size // 2))
        self._route_to(network)
        self.forbid_for_egress(network.subnet)
        self._load_vpc_policy()
        self._wake.set()

    def forbid_for_egress(self, subnet: ipaddress.IPv4Network) -> None:
        """A VPC subnet's hosts are never reached from outside the VPC (through the egress bridge)."""
        with self._lock:
            if subnet in self._forbidden:
                return
            self._forbidden.add(subnet)
        nft(f"add element inet {self._table} vpc_subnets {{ {subnet} }}\n")

    def _route_to(self, network: VpcNetwork) -> None:
        """The host's way to the subnet's segment: a link route on the operator's bridge (unless one
        exists, e.g. the bridge has an address there) and proxy ARP there for the environments."""
        with self._lock:
            if network.bridge in self._bridges_set_up:
                return
            self._bridges_set_up[network.bridge] = None
        try:
            with Rtnl() as host:
                host.add_link_route(network.subnet, network.bridge)
            self._bridges_set_up[network.bridge] = network.subnet
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise NetworkUnavailable(f"route to {network.subnet} on {network.bridge}: {exc}") from exc
        proxy = Path(f"/proc/sys/net/ipv4/conf/{network.bridge}/proxy_arp")
        self._proxy_arp_before.setdefault(network.bridge, proxy.read_text().strip())
        proxy.write_text("1\n")

    def _load_vpc_policy(self) -> None:
        with self._lock:
            attachments = [netpolicy.VpcAttachment(lease.port, lease.address, net.groups, net.bridge)
                           for net in self._nets.values() if net.key != EGRESS
                           for lease in [*net.ready, *net.live.values(), *net.released]]
            rules = dict(self._vpc_rules)
        nft(netpolicy.vpc_ruleset(self._vpc_table, self._vpc_glob, attachments, rules, self._conn_limit))

    def update_groups(self, rules: dict[str, tuple[netpolicy.SgRule, ...]]) -> None:
        """Security group rules changed: the live environments' filter follows at once."""
        with self._lock:
            if not any(g in self._vpc_rules for g in rules):
                return
            self._vpc_rules.update(rules)
        self._load_vpc_policy()

    # -- leases ---------------------------------------------------------------------------------------

    def add_isolated(self, key: str) -> None:
        """A VPC configuration whose subnet no host network was named for: no interface at all."""
        self._isolated.add(key)

    async def lease(self, key: str, owner: str) -> Lease | None:
        """A prepared namespace of network `key` (ready at once from the pool; made now on a miss), or
        None for a network with no interface (an unmapped VPC subnet): the sandbox keeps an empty one."""
        if key in self._isolated:
            return None
        net = self._nets.get(key)
        if net is None:
            raise NetworkUnavailable(f"no network {key!r}")
        with self._lock:
            lease = net.ready.pop() if net.ready else None
        if lease is None:
            self.misses += 1
            # A burst outran the pool: keep a few more ready from now on (a prepared namespace is a few
            # hundred KiB of kernel memory, and making one is kernel work).
            net.target = min(MAX_POOL_SIZE, net.target + POOL_GROWTH)
            slot = await asyncio.to_thread(self._reserve, net)
            lease = await asyncio.get_running_loop().run_in_executor(self._urgent, self._prepare, net, slot)
            if net.key != EGRESS:
                await asyncio.to_thread(self._load_vpc_policy)
        lease.owner = owner
        with self._lock:
            net.live[lease.slot] = lease
        self._wake.set()
        return lease

    def release(self, lease: Lease) -> None:
        """The sandbox is gone (or going): its slot is reused once its interface has disappeared."""
        lease.close_fd()
        net = self._nets.get(lease.key)
        if net is None:
            return
        with self._lock:
            if net.live.pop(lease.slot, None) is lease:
                net.released.append(lease)
        self._wake.set()

    def _reserve(self, net: _Net) -> int:
        with self._lock:
            # Several VPC configurations may share a subnet: its addresses are shared among them.
            used: set[int] = set()
            for other in self._nets.values():
                if other.subnet == net.subnet:
                    used |= {lease.slot for lease in [*other.ready, *other.live.values(), *other.released]}
                    used |= other.pending
            for slot in range(net.first_host, net.last_host + 1):
                if slot not in used and not _link_exists(net.port(slot)):
                    net.pending.add(slot)
                    return slot
        raise NetworkUnavailable(f"network {net.key}: every address is in use")

    def _prepare(self, net: _Net, slot: int) -> Lease:
        """In the network thread: a new namespace with its veth, address, routes and lo up; the host
        side of the veth on the network's bridge (rtnetlink requests, no process started)."""
        port, address = net.port(slot), net.address(slot)
        fd = -1
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise NetworkUnavailable(f"unshare: {os.strerror(ctypes.get_errno())}")
            try:
                fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                with Rtnl() as inside:
                    inside.set_up("lo")
                    inside.add_veth("eth0", port, self._host_ns_fd)
                    self._configure(inside, net, address)
            finally:
                self._back_home()
            with Rtnl() as host:
                self._host_side(host, net, port, address)
            return Lease(net.key, slot, port, address, fd)
        except (OSError, NetworkUnavailable) as exc:
            if fd >= 0:
                os.close(fd)
            if _link_exists(port):
                with contextlib.suppress(NetworkUnavailable):
                    _run(["ip", "link", "del", port])
            raise exc if isinstance(exc, NetworkUnavailable) else NetworkUnavailable(f"{port}: {exc}") from exc
        finally:
            with self._lock:
                net.pending.discard(slot)

    @staticmethod
    def _host_side(host: Rtnl, net: _Net, port: str, address: ipaddress.IPv4Address) -> None:
        if net.routed:
            # A VPC port is routed, not bridged: the host answers ARP for the subnet's hosts on it
            # (proxy ARP) and forwards to the operator's bridge, so that the packet filter's inet
            # family (connection tracking, reject) sees every packet.
            Path(f"/proc/sys/net/ipv4/conf/{port}/proxy_arp").write_text("1\n")
            host.set_up(port)
            host.add_link_route(ipaddress.IPv4Network(f"{address}/32"), port)
        else:
            host.set_master(port, net.bridge)
            # No traffic between two ports of this bridge, even at layer 2.
            Path(f"/sys/class/net/{port}/brport/isolated").write_text("1\n")
            host.set_up(port)

    @staticmethod
    def _configure(inside: Rtnl, net: _Net, address: ipaddress.IPv4Address) -> None:
        inside.add_address("eth0", address, net.subnet.prefixlen)
        inside.set_up("eth0")
        if net.gateway is not None:
            inside.add_default_route("eth0", net.gateway)

    def _back_home(self) -> None:
        if _libc.setns(self._host_ns_fd, CLONE_NEWNET) != 0:  # pragma: no cover - cannot fail as root
            raise SystemExit("hearth-netns: cannot return to the host's network namespace")

    def attach(self, key: str, owner: str, pid: int) -> Lease | None:
        """An interface of network `key` for process `pid` (a SnapStart clone's init), made now: a veth
        created with its inside end directly in the clone's network namespace, then given its address
        and route from inside. A clone cannot join a namespace made ahead (see the module docstring),
        and moving a prepared link between namespaces waits for an RCU grace period (tens of ms on a
        busy host), while creating one there costs about a millisecond. Blocking: run in a thread (it
        changes that thread's namespace and restores it). None for a network without interfaces."""
        if key in self._isolated:
            return None
        net = self._nets.get(key)
        if net is None:
            raise NetworkUnavailable(f"no network {key!r}")
        slot = self._reserve(net)
        port, address = net.port(slot), net.address(slot)
        ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with Rtnl() as host:
                host.add_veth(port, "eth0", ns)
                self._host_side(host, net, port, address)
            if _libc.setns(ns, CLONE_NEWNET) != 0:
                raise NetworkUnavailable(f"setns: {os.strerror(ctypes.get_errno())}")
            try:
                with Rtnl() as inside:
                    self._configure(inside, net, address)
            finally:
                self._back_home()
        except (OSError, NetworkUnavailable) as exc:
            if _link_exists(port):
                with contextlib.suppress(NetworkUnavailable):
                    _run(["ip", "link", "del", port])
            raise exc if isinstance(exc, NetworkUnavailable) else NetworkUnavailable(f"{port}: {exc}") from exc
        finally:
            os.close(ns)
            with self._lock:
                net.pending.discard(slot)
        lease = Lease(key, slot, port, address, -1, owner)
        with self._lock:
            net.live[slot] = lease
        if net.routed:
            self._load_vpc_policy()
        return lease

    # -- the refill loop -------------------------------------------------------------------------------

    async def _refill_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._wake.clear()
            try:
                # Slots whose interface is gone are free again, once their last bytes are credited.
                with self._lock:
                    gone = {id(le) for n in self._nets.values() for le in n.released if not _link_exists(le.port)}
                if gone:
                    await asyncio.to_thread(self._account)
                    with self._lock:
                        for n in self._nets.values():
                            n.released = [le for le in n.released if id(le) not in gone]
                for net in list(self._nets.values()):
                    while len(net.ready) < net.target and not self._closed:
                        slot = await asyncio.to_thread(self._reserve, net)
                        lease = await loop.run_in_executor(self._thread, self._prepare, net, slot)
                        with self._lock:
                            net.ready.append(lease)
                        if net.key != EGRESS:
                            await asyncio.to_thread(self._load_vpc_policy)
            except NetworkUnavailable as exc:
                log.warning("sandbox network pool: %s", exc)
                await asyncio.sleep(1.0)
            released_left = any(n.released for n in self._nets.values())
            try:
                await asyncio.wait_for(self._wake.wait(), 0.5 if released_left else 30.0)
            except TimeoutError:
                pass

    # -- accounting -----------------------------------------------------------------------------------

    def _account(self) -> None:
        """Read the byte counters and credit each address's growth to the function holding it (or that
        held it last: released slots are read before they are reused)."""
        counters: dict[tuple[str, str], int] = {}
        tables = [self._table] + ([self._vpc_table] if len(self._nets) > 1 else [])
        for table in tables:
            try:
                out = json.loads(_run(["nft", "-j", "list", "table", "inet", table]))
            except (NetworkUnavailable, ValueError):
                continue
            for item in out.get("nftables", []):
                found = item.get("set", {})
                name = found.get("name")
                if name not in ("tx", "rx"):
                    continue
                for elem in found.get("elem", []) or []:
                    e = elem.get("elem", {}) if isinstance(elem, dict) else {}
                    addr = e.get("val")
                    counter = e.get("counter", {})
                    if isinstance(addr, str) and isinstance(counter, dict):
                        key = (name, addr)
                        counters[key] = counters.get(key, 0) + int(counter.get("bytes", 0))
        with self._lock:
            holders: dict[str, str] = {}
            for net in self._nets.values():
                for lease in [*net.released, *net.live.values()]:
                    holders[str(lease.address)] = lease.owner
            for (name, addr), value in counters.items():
                delta = value - self._seen.get((name, addr), 0)
                self._seen[(name, addr)] = value
                owner = holders.get(addr)
                if delta > 0 and owner:
                    direction = "sent" if name == "tx" else "received"
                    self._bytes[(owner, direction)] = self._bytes.get((owner, direction), 0) + delta

    def spoofed_packets(self) -> int:
        """Packets dropped because their source was not their port's own address (blocking: runs nft)."""
        total = 0
        for family, table in (("bridge", self._table), ("inet", self._vpc_table)):
            try:
                out = json.loads(_run(["nft", "-j", "list", "counter", family, table, "spoofed"]))
            except (NetworkUnavailable, ValueError):
                continue
            for item in out.get("nftables", []):
                total += int(item.get("counter", {}).get("packets", 0))
        return total

    def bytes_by_function(self) -> dict[tuple[str, str], int]:
        """(function, "sent"|"received") -> bytes, read fresh (blocking: a scrape's collector)."""
        self._account()
        with self._lock:
            return dict(self._bytes)



# Which server owns which instance's host network while it runs (see NetworkPool.sweep_orphans).
OWNERS = Path("/run/hearth/networks")


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command's parenthesis


def _claim(instance: str) -> None:
    OWNERS.mkdir(parents=True, exist_ok=True)
    (OWNERS / instance).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")


def _release(instance: str) -> None:
    with contextlib.suppress(OSError):
        record = OWNERS / instance
        if record.read_text().split()[0] == str(os.getpid()):
            record.unlink()


def _owner_alive(record: Path) -> bool:
    try:
        pid_text, started = record.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    return _start_time(pid) == started  # the same process (a reused pid has another start time)
