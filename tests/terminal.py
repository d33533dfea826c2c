"""A program on a pseudo-terminal, as a learner runs `kubectl exec -it`: write keys, read the
screen's bytes until some text appears (bounded), resize it, collect the exit code."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


class Terminal:
    """``argv`` started on a new pty with ``env``; always `close()` it (kills what is left)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.output = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the program on its terminal
            os.environ.update(env)
            os.execv(argv[0], argv)

    def read_until(self, text: bytes, timeout: float = 30.0) -> bool:
        """Read until ``text`` has appeared (True) or ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:
                    break
        return text in self.output

    def write(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def resize(self, rows: int, cols: int, *, notify: bool = True) -> None:
        """Set the terminal's size (and send SIGWINCH, as a terminal emulator does)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if notify:
            os.kill(self.pid, signal.SIGWINCH)

    def ask_until(self, keys: bytes, text: bytes, tries: int = 30) -> bool:
        """Type ``keys`` until ``text`` appears (for answers that race a resize message)."""
        for _ in range(tries):
            self.write(keys)
            if self.read_until(text, 1.0):
                return True
        return False

    def wait(self) -> int:
        """The program's exit code, once it ended."""
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        os.close(self.fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
