#!/usr/bin/python3
"""bench/ssh_fleet_asyncssh.py HOST PORT USER KEY KNOWN_HOSTS N - the anchor
for bench/ssh.lua's fleet: N sessions at once with asyncssh, each logging
in, opening a shell on a pty, waiting for the router CLI's prompt, running
"echo fleet-I" and checking its output.  Prints "fleet SECONDS FAILED"."""
import asyncio
import sys
import time

import asyncssh

host, port, user, key, kh, n = sys.argv[1:7]


async def session(i):
    async with asyncssh.connect(host, int(port), username=user, client_keys=[key],
                                known_hosts=kh, agent_path=None) as conn:
        proc = await conn.create_process(term_type="vt100", term_size=(80, 24))
        await proc.stdout.readuntil("R1#")
        proc.stdin.write("echo fleet-%d\n" % i)
        out = await proc.stdout.readuntil("R1#")
        proc.close()
        if ("fleet-%d\r\n" % i) not in out:
            raise RuntimeError("bad output: %r" % out)


async def main():
    t = time.monotonic()
    res = await asyncio.gather(*(session(i) for i in range(int(n))), return_exceptions=True)
    failed = [r for r in res if isinstance(r, Exception)]
    for r in failed[:3]:
        print("error:", r, file=sys.stderr)
    print("fleet", time.monotonic() - t, len(failed))


asyncio.run(main())
