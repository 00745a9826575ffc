"""The in-sandbox supervisor: pid 1 of every local sandbox.

It starts the commands the local cloud asks for (already inside the sandbox's namespaces, cgroups and
rlimits, so a command costs one fork here instead of a chain of host processes), streams their output,
relays stdin and signals, and reaps every orphan. It speaks newline-delimited JSON: requests on stdin,
events on stdout. Standard library only; run by /usr/bin/python3 -I -S.

Requests:
  {"op": "spawn", "id": N, "argv": [...], "env": {...}, "cwd": "/home/user", "uid": 1000, "gid": 1000, "stdin": bool}
  {"op": "stdin", "id": N, "data": "<base64>"}
  {"op": "close_stdin", "id": N}
  {"op": "signal", "id": N, "signal": 9}          (to the command's whole process group)
Events:
  {"ev": "ready", "pid": 1}
  {"ev": "started", "id": N, "pid": P} | {"ev": "failed", "id": N, "error": "..."}
  {"ev": "out", "id": N, "fd": 1 | 2, "data": "<base64>"}
  {"ev": "exit", "id": N, "code": C} | {"ev": "exit", "id": N, "signal": S}
"""

import base64
import json
import os
import selectors
import signal
import subprocess
import sys
import time

READ_CHUNK = 65536
# After a command exits, how long its output pipes may stay open (held by a background child) before
# its exit is reported anyway.
DRAIN_GRACE_SECONDS = 0.1


class Command:
    __slots__ = ("id", "popen", "pid", "open_streams", "status", "exited_at")

    def __init__(self, command_id, popen):
        self.id = command_id
        self.popen = popen
        self.pid = popen.pid
        self.open_streams = 2
        self.status = None
        self.exited_at = None


class Supervisor:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.commands = {}
        self.by_pid = {}
        self.out = sys.stdout.buffer
        self.inbox = b""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        # A handler (not SIG_IGN) so that children are not auto-reaped and waitpid sees them.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # No other handlers: as pid 1 of its namespace, the kernel already shields it from signals it
        # does not handle, and an ignored disposition would be inherited by every command.
        self.selector.register(wake_read, selectors.EVENT_READ, ("wake", None))
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, ("control", None))

    def emit(self, event):
        self.out.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def run(self):
        self.emit({"ev": "ready", "pid": os.getpid()})
        while True:
            timeout = self.next_deadline()
            for key, _ in self.selector.select(timeout):
                kind, payload = key.data
                if kind == "wake":
                    try:
                        os.read(key.fd, 4096)
                    except BlockingIOError:
                        pass
                elif kind == "control":
                    self.read_control(key.fd)
                else:
                    self.read_output(key.fd, kind, payload)
            self.reap()
            self.finish_drained()

    def next_deadline(self):
        pending = [c.exited_at + DRAIN_GRACE_SECONDS for c in self.commands.values() if c.exited_at is not None]
        if not pending:
            return None
        return max(0.0, min(pending) - time.monotonic())

    def read_control(self, fd):
        data = os.read(fd, READ_CHUNK)
        if not data:
            # The local cloud is gone: end the sandbox (pid 1 exiting kills every process in it).
            sys.exit(0)
        self.inbox += data
        while b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, request):
        op = request.get("op")
        command = self.commands.get(request.get("id"))
        if op == "spawn":
            self.spawn(request)
        elif command is None:
            return
        elif op == "stdin":
            stdin = command.popen.stdin
            if stdin is not None and not stdin.closed:
                try:
                    stdin.write(base64.b64decode(request.get("data", "")))
                    stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        elif op == "close_stdin":
            stdin = command.popen.stdin
            if stdin is not None and not stdin.closed:
                try:
                    stdin.close()
                except OSError:
                    pass
        elif op == "signal":
            try:
                os.killpg(command.pid, int(request.get("signal", signal.SIGKILL)))
            except ProcessLookupError:
                pass

    def spawn(self, request):
        command_id = request["id"]
        try:
            popen = subprocess.Popen(
                request["argv"],
                stdin=subprocess.PIPE if request.get("stdin") else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=request.get("cwd") or "/",
                env=request.get("env") or {},
                user=request.get("uid", 1000),
                group=request.get("gid", 1000),
                extra_groups=[],
                process_group=0,
                close_fds=True,
                restore_signals=True,
            )
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            self.emit({"ev": "failed", "id": command_id, "error": str(error)})
            return
        command = Command(command_id, popen)
        self.commands[command_id] = command
        self.by_pid[popen.pid] = command
        for stream, fd_number in ((popen.stdout, 1), (popen.stderr, 2)):
            os.set_blocking(stream.fileno(), False)
            self.selector.register(stream.fileno(), selectors.EVENT_READ, (command_id, (stream, fd_number)))
        self.emit({"ev": "started", "id": command_id, "pid": popen.pid})

    def read_output(self, fd, command_id, payload):
        stream, fd_number = payload
        command = self.commands.get(command_id)
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.emit({"ev": "out", "id": command_id, "fd": fd_number, "data": base64.b64encode(data).decode()})
            return
        self.selector.unregister(fd)
        stream.close()
        if command is not None:
            command.open_streams -= 1

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            command = self.by_pid.pop(pid, None)
            if command is None:
                continue  # An orphan that was reparented to pid 1.
            command.status = status
            command.exited_at = time.monotonic()
            # Popen must not wait for a pid that is already reaped.
            command.popen.returncode = os.waitstatus_to_exitcode(status)

    def finish_drained(self):
        now = time.monotonic()
        for command in list(self.commands.values()):
            if command.status is None:
                continue
            if command.open_streams > 0 and now - command.exited_at < DRAIN_GRACE_SECONDS:
                continue
            for stream in (command.popen.stdout, command.popen.stderr):
                if stream is not None and not stream.closed:
                    # Drain what is already buffered, then stop listening.
                    try:
                        while True:
                            data = os.read(stream.fileno(), READ_CHUNK)
                            if not data:
                                break
                            fd_number = 1 if stream is command.popen.stdout else 2
                            self.emit({"ev": "out", "id": command.id, "fd": fd_number, "data": base64.b64encode(data).decode()})
                    except (BlockingIOError, OSError):
                        pass
                    self.selector.unregister(stream.fileno())
                    stream.close()
            if command.popen.stdin is not None and not command.popen.stdin.closed:
                try:
                    command.popen.stdin.close()
                except OSError:
                    pass
            del self.commands[command.id]
            status = command.status
            if os.WIFSIGNALED(status):
                self.emit({"ev": "exit", "id": command.id, "signal": os.WTERMSIG(status)})
            else:
                self.emit({"ev": "exit", "id": command.id, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    Supervisor().run()
