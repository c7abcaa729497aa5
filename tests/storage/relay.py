"""A TCP relay between the appliance and the S3 server, to cut the network
in the middle of an upload (the endpoint "goes down" as the appliance sees
it, while the server keeps what it has, so the test can look at the bucket
afterwards). Threads in the test process; bounded; closed by the fixture."""

from __future__ import annotations

import socket
import threading


class TcpRelay:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1"):
        self.target = target
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.down = False
        self.cut_at: int | None = None  # upstream bytes after which the relay goes down by itself
        self.upstream = 0
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cut_after(self, n: int) -> None:
        with self.lock:
            self.upstream, self.cut_at = 0, n

    def go_down(self) -> None:
        with self.lock:
            self.down = True
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def come_up(self) -> None:
        with self.lock:
            self.down, self.cut_at = False, None

    def _accept(self) -> None:
        while not self.closed:
            try:
                a, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if self.down:
                a.close()
                continue
            try:
                b = socket.create_connection(self.target, timeout=5)
            except OSError:
                a.close()
                continue
            b.settimeout(None)
            with self.lock:
                self.conns += [a, b]
            threading.Thread(target=self._pump, args=(a, b, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                if up:
                    with self.lock:
                        self.upstream += len(data)
                        trip = self.cut_at is not None and self.upstream >= self.cut_at
                    if trip:
                        self.go_down()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.go_down()
        self.sock.close()
        self.thread.join(2)
