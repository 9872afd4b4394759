#!/usr/bin/env python3
"""A hitless worker in Python, standard library only: the worker contract (README, "The
worker contract") in one file, to copy and adapt.

    npx hitless start --listen 127.0.0.1:8080 --workers 2 -- python3 worker.py
    curl http://127.0.0.1:8080/        # hello from python generation 1, worker 0
    npx hitless reload                 # generation 2 takes over; nothing is dropped

What it does, in the order a worker's life goes:

1. Takes its listening socket from fd 3 (LISTEN_FDS, LISTEN_PID: systemd's convention).
   The socket is NON-BLOCKING and SHARED: every worker of every generation, and the
   master, hold the same open socket, and it was made non-blocking when it was created.
   Accept from a poll/select loop and treat EAGAIN (Python: BlockingIOError) as "another
   worker took that connection". Never make it blocking (that would change it for every
   process that shares it). http.server's serve_forever below does exactly that.
2. Writes READY=1 to the fd in HITLESS_READY_FD once it serves. A reload waits for it; a
   worker that never says it is stopped at readyTimeout (SIGTERM, then SIGKILL after at
   most 5 s) and the old generation keeps serving. It shares the accept queue from its first
   accept, READY or not, so it answers connections before READY=1: write it as soon as the
   worker can serve. What a rejected worker accepted is answered if it drains on SIGTERM
   (step 4) within those seconds; a request it still holds at the SIGKILL is cut.
3. Optionally reports its traffic every second on the master's channel (NODE_CHANNEL_FD),
   for `hitless status`, Prometheus and canary reloads (docs/ARCHITECTURE.md, "Traffic
   figures").
4. On SIGTERM (HITLESS_STOP_SIGNAL) stops accepting, finishes the requests in flight and
   exits 0. It CLOSES its copy of the listening socket and never calls shutdown() on it:
   shutdown(2) acts on the socket itself, which every generation shares, and would stop
   the new generation from accepting too.

Each response closes its connection (HTTP/1.0), so a stop never waits for idle keep-alive
clients. For keep-alive, the drain must also close idle connections after a short grace
and answer requests in flight with `Connection: close` (hitless's in-app library does that
for Node servers; gunicorn's sync worker closes after each response, like this one).
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SD_LISTEN_FDS_START = 3
GENERATION = os.environ.get("HITLESS_GENERATION", "-")
WORKER = os.environ.get("HITLESS_WORKER", "-")


def inherited_socket():
    """The listening socket the master passes at fd 3, or None when run without hitless."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    # Like sd_listen_fds(1): programs this worker starts must not take the fds for theirs.
    for name in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"):
        os.environ.pop(name, None)
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    # The fd is O_NONBLOCK (shared with the master and the other workers), though Python
    # reports the socket as blocking (gettimeout() is None: it does not read the flag).
    # Leave it so: serve_forever waits in select() and takes BlockingIOError from accept()
    # as "nothing to accept", which is what it means when workers share a socket. Never
    # call setblocking(True): that changes the socket for every process.
    return sock


class Traffic:
    """Cumulative counters in the shape of the `stats` message (docs/ARCHITECTURE.md)."""

    # Upper bounds (ms) of the 17 latency buckets, the last one open (LATENCY_BOUNDS_MS).
    BOUNDS = [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.latency = [0] * 17
        self.latency_sum = 0.0

    def record(self, status, ms):
        cls = "2xx" if status < 300 else "3xx" if status < 400 else "4xx" if status < 500 else "5xx"
        bucket = next((i for i, bound in enumerate(self.BOUNDS) if ms <= bound), len(self.BOUNDS))
        with self.lock:
            self.requests[cls] += 1
            self.latency[bucket] += 1
            self.latency_sum += ms

    def line(self):
        with self.lock:
            return json.dumps({"hitless": 1, "type": "stats", "requests": dict(self.requests),
                               "latency": list(self.latency), "latencySum": self.latency_sum}) + "\n"


traffic = Traffic()


def report_traffic(fd):
    """Every second, one JSON line on the master's channel. Ends quietly when it closes."""
    while True:
        time.sleep(1)
        try:
            os.write(fd, traffic.line().encode())
        except OSError:
            return


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: see the module's last paragraph

    def do_GET(self):
        started = time.monotonic()
        body = ("hello from python generation %s, worker %s\n" % (GENERATION, WORKER)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Generation", GENERATION)  # which generation answered (handy during reloads)
        self.end_headers()
        self.wfile.write(body)
        traffic.record(200, (time.monotonic() - started) * 1000)

    def log_message(self, *args):
        pass  # no access log on stderr (hitless logs every worker's output)


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests in flight
    block_on_close = True


def main():
    sock = inherited_socket()
    if sock is None:
        server = Server(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler)
    else:
        server = Server(sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket.close()  # the unbound socket the constructor made
        server.socket = sock

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return: it must run on another thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    channel = os.environ.get("NODE_CHANNEL_FD")
    if channel:
        threading.Thread(target=report_traffic, args=(int(channel),), daemon=True).start()
    ready = os.environ.get("HITLESS_READY_FD")
    if ready:
        os.write(int(ready), b"READY=1\n")
        os.write(int(ready), b"STATUS=serving\n")  # shown in `hitless status`

    server.serve_forever()  # returns once stop() ran: accepts nothing more
    # close(2) on this worker's copy only, never socket.shutdown(): see point 4 above.
    # server_close() closes the listening socket and joins the request threads.
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
