#!/usr/bin/python3
"""spec/servers/ftp_delay.py PORT ROOT USER PASSWORD DELAY [LOGFILE]

pyftpdlib on 127.0.0.1:PORT serving ROOT to one user (all permissions),
answering every command DELAY seconds late, as a server a network round
trip away would.  bench/mirror.lua uses it (run it with /usr/bin/python3:
that is the python pyftpdlib is installed for).

How the delay is applied:
  * Each command line read on a control connection is processed DELAY
    seconds after it arrived, in the order the lines arrived.  Lines sent
    back to back (pipelined) therefore wait together, not one after the
    other: n pipelined commands cost about one DELAY, as over a link with
    that latency; n commands each sent after the previous reply cost n.
  * Nothing else is delayed: the greeting, the data connections and their
    bytes, and the replies that end a transfer (the 226 after a RETR, LIST
    or MLSD is sent as soon as the data is out, so a transfer costs one
    DELAY, the one of its command).
  * Commands are otherwise handled by pyftpdlib's stock FTPHandler (MLSD,
    MLST, MDTM, SIZE, EPSV, REST...).

With LOGFILE, every command line is appended to it when it arrives, as
"<seconds since start> <connection number> <line>" (PASS's argument is
written as ******), flushed line by line, so a client's commands can be
counted.  The script prints "ready" once it listens.
"""
import collections
import logging
import sys
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


class DelayedHandler(FTPHandler):
    delay = 0.0
    cmdlog = None
    t0 = time.monotonic()
    connections = 0

    def __init__(self, *args, **kwargs):
        FTPHandler.__init__(self, *args, **kwargs)
        DelayedHandler.connections += 1
        self._conn_no = DelayedHandler.connections
        self._pending = collections.deque()   # raw lines, oldest first
        self._timers = []

    def found_terminator(self):
        # take the line that just ended out of pyftpdlib's buffer and
        # hand it back to the stock code DELAY seconds from now
        raw = b''.join(self._in_buffer)
        self._in_buffer = []
        self._in_buffer_len = 0
        if self.cmdlog is not None:
            text = raw.decode('utf-8', 'replace')
            if text[:5].upper() == 'PASS ':
                text = text[:5] + '******'
            self.cmdlog.write('%.6f %d %s\n' % (
                time.monotonic() - self.t0, self._conn_no, text))
            self.cmdlog.flush()
        self._pending.append(raw)
        self._timers.append(self.ioloop.call_later(self.delay, self._run_one))

    def _run_one(self):
        if self._timers:
            self._timers.pop(0)
        if self._closed or not self._pending:
            return
        raw = self._pending.popleft()
        # a part of the next line may already be buffered: keep it aside
        # while the stock handler processes this one
        partial, partial_len = self._in_buffer, self._in_buffer_len
        self._in_buffer, self._in_buffer_len = [raw], len(raw)
        try:
            FTPHandler.found_terminator(self)
        finally:
            if not self._closed:
                self._in_buffer, self._in_buffer_len = partial, partial_len

    def close(self):
        for t in self._timers:
            if not t.cancelled:
                t.cancel()
        self._timers = []
        self._pending.clear()
        FTPHandler.close(self)


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    delay = float(sys.argv[5])
    # pyftpdlib would log every command to stderr: only problems here
    logging.basicConfig(level=logging.WARNING)
    auth = DummyAuthorizer()
    auth.add_user(user, password, root, perm='elradfmwMT')
    DelayedHandler.authorizer = auth
    DelayedHandler.delay = delay
    DelayedHandler.banner = 'ftp_delay ready (%g s per command)' % delay
    if len(sys.argv) == 7:
        DelayedHandler.cmdlog = open(sys.argv[6], 'a', encoding='utf-8')
    server = FTPServer(('127.0.0.1', port), DelayedHandler)
    server.max_cons = 256
    print('ready', flush=True)
    # not server.serve_forever(): pyftpdlib's epoll loop takes a timeout
    # of 0 (a scheduled call already due) as "wait forever" (`timeout or
    # -1`), so a delayed command could wait for the next unrelated I/O.
    # Here whatever is due runs before the loop waits again.
    ioloop = server.ioloop
    timeout = None
    while ioloop.socket_map:
        ioloop.poll(timeout)
        timeout = ioloop.sched.poll()
        while timeout == 0:
            timeout = ioloop.sched.poll()


if __name__ == '__main__':
    main()
