"""fleet_asyncio.py SESSIONS PORT... - the anchor for bench/fleet.lua.

The same work as netlua's fleet: SESSIONS logins + one command against
the router-like servers (spec/servers/router.lua) at localhost:PORT...
(FLEET_HOST overrides the name),
all at once, with Python's asyncio over raw streams (no Telnet
negotiation: the servers send none).  Raises its descriptor limit to the
hard limit.  Prints one line:
    asyncio SESSIONS SECONDS PEAK_RSS_KIB FAILED BASE_RSS_KIB CPU_SECONDS
where BASE_RSS_KIB is the peak before the first session started and
CPU_SECONDS the user + system time the sessions took (all threads).
"""
import asyncio
import os
import re
import resource
import sys
import time

PROMPT = re.compile(rb"r\d+> $")
HOST = os.environ.get("FLEET_HOST", "localhost")  # by name, as netlua


def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def until(reader, pred):
    buf = b""
    while not pred(buf):
        chunk = await reader.read(4096)
        if not chunk:
            raise EOFError("closed")
        buf += chunk
    return buf


async def session(port):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        await until(reader, lambda b: b.endswith(b"login: "))
        writer.write(b"admin\r\n")
        await until(reader, lambda b: b.endswith(b"Password: "))
        writer.write(b"pw\r\n")
        await until(reader, lambda b: PROMPT.search(b) is not None)
        writer.write(b"show version\r\n")
        out = await until(reader, lambda b: PROMPT.search(b) is not None)
        if b"Version 1.2.3" not in out:
            raise ValueError("bad output")
    finally:
        writer.close()


async def main(n, ports):
    failed = 0

    async def one(i):
        nonlocal failed
        try:
            await asyncio.wait_for(session(ports[i % len(ports)]), 120)
        except Exception as e:  # counted, like the Lua side
            failed += 1
            if failed <= 3:
                print("session %d: %r" % (i, e), file=sys.stderr)

    await asyncio.gather(*(one(i) for i in range(n)))
    return failed


if __name__ == "__main__":
    n = int(sys.argv[1])
    ports = [int(p) for p in sys.argv[2:]]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = peak_kib()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    failed = asyncio.run(main(n, ports))
    took = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print("asyncio %d %.3f %d %d %d %.2f" % (n, took, peak_kib(), failed, base, cpu))
