"""spec/servers/ftp_tls_hostile.py MODE PORT CERT KEY - an explicit-FTPS
server (AUTH TLS) that sends replies nobody asked for, under TLS where
the client cannot count the bytes on the wire as reply bytes.

Modes: twice (NOOP is answered "200 noop" and "200 noop again" in one TLS
record), tworecs (the same two replies as two records written back to
back), twicelate (NOOP is answered "200 noop", and 0.1 s later "200 noop
late" in a record of its own).  DELE is always "550 no such file"; PWD is
'257 "/"'.  Serves each client in a thread of its own on 127.0.0.1:PORT;
prints "ready" once listening.  Tests nothing itself.
"""
import socket
import ssl
import sys
import threading
import time

mode, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)


CANNED = {
    "PBSZ": "200 ok\r\n", "PROT": "200 ok\r\n", "TYPE": "200 ok\r\n",
    "USER": "331 password\r\n", "PASS": "230 logged in\r\n",
    "PWD": '257 "/"\r\n', "CWD": "250 ok\r\n", "DELE": "550 no such file\r\n",
}


def serve(conn):
    sock = conn
    buf = b""

    def send(*replies):
        # one write per argument: each becomes one TLS record
        for r in replies:
            sock.sendall(r.encode())

    send("220 hostile tls\r\n")
    while True:
        while b"\r\n" not in buf:
            try:
                chunk = sock.recv(4096)
            except (OSError, ssl.SSLError):
                return
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        verb = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
        if verb == "AUTH":
            send("234 go ahead\r\n")
            try:
                sock = ctx.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                return
        elif verb in CANNED:
            send(CANNED[verb])
        elif verb == "NOOP":
            if mode == "twice":
                send("200 noop\r\n200 noop again\r\n")
            elif mode == "tworecs":
                send("200 noop\r\n", "200 noop again\r\n")
            elif mode == "twicelate":
                send("200 noop\r\n")
                time.sleep(0.1)
                send("200 noop late\r\n")
            else:
                send("200 noop\r\n")
        elif verb == "QUIT":
            send("221 bye\r\n")
            return
        else:
            send("502 not here\r\n")


def run():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=lambda c=conn: (serve(c), c.close()), daemon=True).start()


run()
