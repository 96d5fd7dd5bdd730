#!/usr/bin/python3
"""bench/ssh_paramiko.py HOST PORT USER KEY KNOWN_HOSTS N BYTES - the anchor
for bench/ssh.lua: N exec round trips of `true` on one paramiko
connection, then BYTES of stdout from one command.  Prints two lines:
"rtt SECONDS" and "bulk SECONDS BYTES_RECEIVED"."""
import sys
import time

import paramiko

host, port, user, key, kh, n, size = sys.argv[1:8]
c = paramiko.SSHClient()
c.load_host_keys(kh)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(host, int(port), user, key_filename=key, look_for_keys=False, allow_agent=False)
t = time.monotonic()
for _ in range(int(n)):
    _, o, _ = c.exec_command("true")
    o.read()
    if o.channel.recv_exit_status() != 0:
        sys.exit("exec failed")
print("rtt", time.monotonic() - t)
t = time.monotonic()
_, o, _ = c.exec_command("head -c %d /dev/zero" % int(size))
got = 0
while True:
    b = o.read(1 << 20)
    if not b:
        break
    got += len(b)
o.channel.recv_exit_status()
print("bulk", time.monotonic() - t, got)
c.close()
