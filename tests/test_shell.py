"""`lagoa shell` as a person uses it: in a pseudo-terminal of 80 columns that is its controlling
terminal (so Ctrl-C is a key while typing and a SIGINT while a query runs), with line editing and
history, dot commands, errors that leave it running, and Ctrl-C that never ends it."""

from __future__ import annotations

import codecs
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lagoa.orchestrate.project import Project

CONFIG = """\
name: shell
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {order_id: long, amount: double}
"""
# CSI and OSC sequences, keypad modes: what prompt_toolkit and rich add around the text.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]")
DEADLINE = 60.0
UP, CTRL_C = "\x1b[A", "\x03"
PROMPT = "lagoa>"  # the space after it is drawn as a cursor move


def _own_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on stdin becomes its controlling one."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``lagoa shell`` in a pseudo-terminal: what it shows (escape sequences left out) is read
    until an expected text appears after the previous one found."""

    def __init__(self, folder: Path) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lagoa.cli", "shell"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=folder,
            env={
                **environment,
                "TERM": "xterm",
                "COLUMNS": "80",
                "LINES": "24",
                "PROMPT_TOOLKIT_NO_CPR": "1",
            },
            start_new_session=True,
            preexec_fn=_own_terminal,
            close_fds=True,
        )
        os.close(follower)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.raw = ""
        self.seen = 0
        self.ended = False

    @property
    def screen(self) -> str:
        return ESCAPES.sub("", self.raw).replace("\r", "")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.leader], [], [], max(timeout, 0))
        if not ready:
            return
        try:
            data = os.read(self.leader, 65536)
        except OSError:  # the shell is gone and its end of the terminal closed
            data = b""
        if not data:
            self.ended = True
        self.raw += self.decoder.decode(data)

    def expect(self, text: str) -> str:
        """What was shown from the last expected text up to and including ``text``."""
        deadline = time.monotonic() + DEADLINE
        while (found := self.screen.find(text, self.seen)) < 0:
            assert not self.ended, f"the shell ended before showing {text!r}:\n{self.screen}"
            assert time.monotonic() < deadline, f"{text!r} not shown in {DEADLINE} s:\n{self.screen}"
            self._read(deadline - time.monotonic())
        shown, self.seen = self.screen[self.seen : found + len(text)], found + len(text)
        return shown

    def send(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def prompt(self) -> str:
        """What was shown up to a fresh prompt, once it waits for keys. (prompt_toolkit draws
        the line again when it is done with it, so a prompt followed by text is an old one.)"""
        deadline = time.monotonic() + DEADLINE
        while not self.screen[self.seen :].rstrip().endswith(PROMPT):
            assert not self.ended, f"the shell ended before a prompt:\n{self.screen}"
            assert time.monotonic() < deadline, f"no prompt in {DEADLINE} s:\n{self.screen}"
            self._read(deadline - time.monotonic())
        shown, self.seen = self.screen[self.seen :], len(self.screen)
        return shown

    def interrupt(self) -> str:
        """Ctrl-C, pressed again every few seconds (as a person would) until a fresh prompt shows;
        what was shown up to it. prompt_toolkit gives the terminal back a moment before it gives
        SIGINT back to Python: a Ctrl-C in between reaches neither, and the query runs on."""
        deadline = time.monotonic() + DEADLINE
        while True:
            self.send(CTRL_C)
            again = min(deadline, time.monotonic() + 3)
            while time.monotonic() < again and not self.screen[self.seen :].rstrip().endswith(PROMPT):
                assert not self.ended, f"the shell ended after Ctrl-C:\n{self.screen}"
                self._read(again - time.monotonic())
            if self.screen[self.seen :].rstrip().endswith(PROMPT):
                shown, self.seen = self.screen[self.seen :], len(self.screen)
                return shown
            assert time.monotonic() < deadline, (
                f"Ctrl-C did not stop the query in {DEADLINE} s:\n{self.screen}"
            )

    def run(self, statement: str) -> str:
        """Type ``statement`` and Enter at a fresh prompt; what it shows up to the next prompt."""
        self.send(statement + "\r")
        return self.prompt()

    def wait_for_cooked_mode(self) -> None:
        """Until the prompt has handed the terminal back (signals on): a statement is running."""
        deadline = time.monotonic() + DEADLINE
        while not termios.tcgetattr(self.leader)[3] & termios.ISIG:
            assert time.monotonic() < deadline, f"the prompt kept the terminal:\n{self.screen}"
            self._read(0.05)

    def close(self) -> int:
        """Wait for the shell to end; its exit code."""
        deadline = time.monotonic() + DEADLINE
        while not self.ended and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            os.close(self.leader)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shell")
    (root / "lagoa.yml").write_text(CONFIG)
    (root / "data").mkdir()
    (root / "data" / "orders1.csv").write_text("order_id,amount\n1,2.5\n2,3.5\n3,1.0\n")
    Project.load(root).ingest()
    return root


@pytest.fixture
def terminal(folder: Path) -> Iterator[Terminal]:
    shell = Terminal(folder)
    try:
        shell.prompt()
        yield shell
    finally:
        if shell.process.poll() is None:
            shell.process.kill()
            shell.close()


def test_statements_history_and_dot_commands(terminal: Terminal, folder: Path) -> None:
    assert "4217" in terminal.run("select 4200 + 17 as answer;")
    terminal.send(UP)
    terminal.expect("4200 + 17")  # the statement is back on the prompt line
    assert "4217" in terminal.run("")
    assert "4200 + 17" in (folder / ".lagoa" / "shell_history").read_text()

    listed = terminal.run(".tables")
    assert re.search(r"silver\s+orders\s+view", listed), listed
    columns = terminal.run(".schema silver.orders")
    assert re.search(r"amount\s+DOUBLE", columns), columns
    assert "no table or view `nosuch`" in terminal.run(".schema nosuch")

    # An unknown dot command is an error of its own: the statement after it runs.
    assert "unknown command .foo (try .help)" in terminal.run(".foo")
    assert "1234" in terminal.run("select 1200 + 34 as after_foo;")
    assert "Binder Error" in terminal.run("select nosuch_column;")
    # Enter before the `;` goes on to a continuation line.
    shown = terminal.run("select 2 *\r  21 as multi_line;")
    assert "   ..> " in shown and re.search(r"^\s*42\s*$", shown, re.M), shown
    assert ".schema TABLE" in terminal.run(".help")

    terminal.send(".quit\r")
    assert terminal.close() == 0
    assert "Traceback" not in terminal.screen


def test_ctrl_c_clears_the_statement_or_interrupts_the_query_and_never_ends_the_shell(
    terminal: Terminal,
) -> None:
    terminal.send("select 'dro' || 'pped' as d")
    terminal.expect("'pped' as d")
    terminal.send(CTRL_C)
    terminal.prompt()
    assert "kept" in terminal.run("select 'ke' || 'pt' as k;")
    assert "dropped" not in terminal.screen

    # A join of 10^14 pairs runs until interrupted.
    terminal.send("select count(*) from range(10000000) a, range(10000000) b where a.range * b.range = -1;\r")
    terminal.wait_for_cooked_mode()
    assert "interrupted" in terminal.interrupt()
    assert "4217" in terminal.run("select 4200 + 17 as answer;")

    terminal.send("\x04")  # Ctrl-D on an empty line leaves too
    assert terminal.close() == 0
    assert "Traceback" not in terminal.screen
