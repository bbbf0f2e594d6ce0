"""A real authoritative DNS server for the tests: dnslib's, on a free loopback port (UDP + TCP).

dnslib is a PyPI package (a dev dependency), so ``make install`` brings it on any machine without
root or apt; it serves a zone file as authoritative answers (``aa``) from a thread in the test.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

from dnslib.server import DNSLogger, DNSServer, TCPServer, UDPServer
from dnslib.zoneresolver import ZoneResolver

log = logging.getLogger("tests.dns")


@contextlib.contextmanager
def serve_zone(zone: str, *, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve ``zone`` (zone-file text) on ``host``; yields the port; stops both servers after."""
    resolver = ZoneResolver(zone)
    logger = DNSLogger(log="-request,-reply,-truncated", logf=log.warning)
    for _ in range(20):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        try:
            udp = DNSServer(resolver, address=host, port=port, logger=logger, server=UDPServer)
        except OSError:
            continue
        try:
            tcp = DNSServer(
                resolver, address=host, port=port, tcp=True, logger=logger, server=TCPServer
            )
        except OSError:  # the TCP side of that port is taken: try another
            udp.server.server_close()
            continue
        break
    else:  # pragma: no cover
        raise RuntimeError("no free loopback port for the test DNS server")
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        for server in (udp, tcp):
            server.stop()
            server.server.server_close()
