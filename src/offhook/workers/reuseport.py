"""SO_REUSEPORT socket groups whose socket is chosen by the SOURCE ADDRESS.

One group is N UDP sockets (or N TCP listeners) bound to the same address
and port with ``SO_REUSEPORT``; :func:`by_source_program` is the classic BPF program
attached to it (``SO_ATTACH_REUSEPORT_CBPF``) that returns the index of the
socket a datagram goes to: the IPv4 source address, or the last 32 bits of
the IPv6 one, modulo N (the IP version is read from the packet, so one
program serves IPv4, IPv6 and dual-stack sockets). Every datagram of one
source address therefore reaches one socket, whatever its source port: the
per-source defences (rate buckets, failed logins) of the worker reading that
socket see everything the source sends. :func:`home_of` is the same
function in Python (which worker an address lands on).

The sockets of a group keep their index as long as they stay open: the
supervisor holds them all, and a restarted worker reads the same socket.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct
from collections.abc import Sequence

from offhook.net.listen import PICK_ATTEMPTS, BindSpec, bind_plan

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
SKF_NET_OFF = -0x100000  # linux/filter.h: offsets from the network header
BUFFER = 4 * 1024 * 1024

# Classic BPF opcodes (linux/bpf_common.h).
LD_B_ABS = 0x30
LD_W_ABS = 0x20
RSH_K = 0x74
JEQ_K = 0x15
JA = 0x05
MOD_K = 0x94
RET_A = 0x16

Instruction = tuple[int, int, int, int]  # code, jt, jf, k


def by_source_program(n: int) -> list[Instruction]:
    """The program: (IPv4 ? src : last word of the IPv6 src) % n, as the socket index."""
    if not 1 <= n <= 0xFFFF:
        raise ValueError(f"a group of {n} sockets")
    net = SKF_NET_OFF & 0xFFFFFFFF
    return [
        (LD_B_ABS, 0, 0, net),  # A = first byte of the IP header
        (RSH_K, 0, 0, 4),  # A = IP version
        (JEQ_K, 0, 2, 4),  # IPv4: next; else skip two
        (LD_W_ABS, 0, 0, net + 12),  # A = IPv4 source address
        (JA, 0, 0, 1),
        (LD_W_ABS, 0, 0, net + 20),  # A = last word of the IPv6 source address
        (MOD_K, 0, 0, n),
        (RET_A, 0, 0, 0),
    ]


def run_program(program: Sequence[Instruction], packet: bytes) -> int:
    """Interpret ``program`` on an IP packet (what the kernel does; for tests)."""
    a, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        offset = k - (SKF_NET_OFF & 0xFFFFFFFF)
        if code == LD_B_ABS:
            a = packet[offset]
        elif code == LD_W_ABS:
            a = int.from_bytes(packet[offset : offset + 4], "big")
        elif code == RSH_K:
            a >>= k
        elif code == JEQ_K:
            pc += jt if a == k else jf
        elif code == JA:
            pc += k
        elif code == MOD_K:
            a %= k
        elif code == RET_A:
            return a
        else:
            raise ValueError(f"opcode {code:#x}")
        pc += 1


def home_of(host: str, n: int) -> int:
    """The index of the socket (worker) datagrams from ``host`` reach in a group of ``n``."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 packet on a dual-stack socket
    return (int(ip) & 0xFFFFFFFF) % n


def attach(sock: socket.socket, n: int) -> None:
    """Attach the program to the group ``sock`` belongs to."""
    program = by_source_program(n)
    array = (ctypes.c_uint8 * (8 * len(program)))()
    ctypes.memmove(array, b"".join(struct.pack("HBBI", *i) for i in program), len(array))
    sock.setsockopt(
        socket.SOL_SOCKET,
        SO_ATTACH_REUSEPORT_CBPF,
        struct.pack("HL", len(program), ctypes.addressof(array)),
    )  # the kernel copies the program: ``array`` may go


def _member(
    spec: BindSpec, port: int, reuse: bool = True, kind: int = socket.SOCK_DGRAM
) -> socket.socket:
    sock = socket.socket(spec.family, kind)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if spec.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec.v6only else 0)
        if kind == socket.SOCK_DGRAM:  # a listener's buffers would be every connection's
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, opt, BUFFER)
        if spec.family == socket.AF_INET6 and "%" in spec.host:
            sock.bind(socket.getaddrinfo(spec.host, port, spec.family, kind)[0][4])
        else:
            sock.bind((spec.host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_groups(
    listen: str | Sequence[str], port: int, n: int
) -> tuple[list[list[socket.socket]], int]:
    """One group of ``n`` sockets per address of ``listen`` (``net.listen.bind_plan``), one port.

    Returns (sockets by worker: worker i's socket of each address, in the
    plan's order; the port). With port 0 the first socket picks it.
    """
    return _groups(listen, port, n, socket.SOCK_DGRAM)


def tcp_groups(
    listen: str | Sequence[str], port: int, n: int, backlog: int
) -> list[list[socket.socket]]:
    """:func:`udp_groups` for TCP listeners on ``port`` (not 0: the UDP groups' port).

    A TCP socket joins its group when it listens, and the kernel numbers the
    group's sockets in that order: worker i's socket listens i-th, so that
    the program's index is the worker's, as for UDP. Connections that arrive
    while a worker restarts wait in its socket's backlog.
    """
    groups, _ = _groups(listen, port, n, socket.SOCK_STREAM, backlog)
    return groups


def listener_groups(
    listen: str | Sequence[str], port: int, n: int, backlog: int
) -> tuple[list[list[socket.socket]], int]:
    """:func:`tcp_groups` on a port of its own (0: picked): (listeners by worker, port).
    The SCCP listener's groups: a phone's connection reaches its address's home."""
    return _groups(listen, port, n, socket.SOCK_STREAM, backlog)


def sip_groups(
    listen: str | Sequence[str], port: int, n: int, tcp: bool, backlog: int
) -> tuple[list[list[socket.socket]], list[list[socket.socket]], int]:
    """The UDP groups and, with ``tcp``, the TCP listener groups on one port.

    Returns (UDP sockets by worker, TCP listeners by worker, the port). With
    port 0 the UDP groups pick it; when that port is taken for TCP, both pick
    again (a few times, as ``net.listen`` does for one process).
    """
    for attempt in range(1, PICK_ATTEMPTS + 1):
        udp, picked = udp_groups(listen, port, n)
        if not tcp:
            return udp, [[] for _ in range(n)], picked
        try:
            return udp, tcp_groups(listen, picked, n, backlog), picked
        except OSError as exc:
            for socks in udp:
                for sock in socks:
                    sock.close()
            if port != 0 or exc.errno != errno.EADDRINUSE or attempt == PICK_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _groups(
    listen: str | Sequence[str], port: int, n: int, kind: int, backlog: int = 0
) -> tuple[list[list[socket.socket]], int]:
    by_worker: list[list[socket.socket]] = [[] for _ in range(n)]
    try:
        for spec in bind_plan(listen):
            # A plain socket first: the port is free (SO_REUSEPORT alone would let
            # this group join another process's group of the same user).
            with _member(spec, port, reuse=False, kind=kind) as probe:
                port = probe.getsockname()[1]
            for i in range(n):
                sock = _member(spec, port, kind=kind)
                port = sock.getsockname()[1]
                by_worker[i].append(sock)
            if kind == socket.SOCK_STREAM:
                for i in range(n):
                    by_worker[i][-1].listen(backlog)
            if n > 1:
                attach(by_worker[0][-1], n)
    except BaseException:
        for socks in by_worker:
            for sock in socks:
                sock.close()
        raise
    return by_worker, port
