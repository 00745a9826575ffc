"""Persistent Python kernel for the tradeswarm code interpreter.

Started by ``src/localcloud/interpreter/kernel.ts`` as ``python3 -u python_kernel.py``
with stdin, stdout and stderr as pipes and a control channel on file descriptor 3.

Control channel: newline-delimited JSON, one object per line.

Host to kernel:
    {"type": "execute", "id": 7, "code": "...", "env_vars": {...}, "marker": "...", "sigints_sent": 0}
    {"type": "interrupt", "id": 7}    (ignored here: interrupts arrive as SIGINT)
Fields this kernel does not use ("sigints_sent" is for the JavaScript kernel) are ignored.

Kernel to host:
    {"type": "ready", "language": "python", "pid": 123, "version": "3.11.2"}
    {"type": "result", "id": 7, "is_main_result": true, "text": "2", "html": ...}
    {"type": "error", "id": 7, "name": "ZeroDivisionError", "value": "...", "traceback": "..."}
    {"type": "done", "id": 7, "execution_count": 3, "markers": ["stdout", "stderr"]}

Everything user code prints goes to the real file descriptors 1 and 2, so output of
print() and of subprocesses (os.system) stays in order. After each execution the kernel
writes the execution's marker to fd 1 and fd 2 (listed in "markers"), then sends "done";
the host reports the execution finished once it has read the markers from both pipes.
"""

import ast
import base64
import builtins
import json
import linecache
import os
import re
import signal
import sys
import types

CONTROL_FD = 3
# The file name the interpreter gave this script's code objects (what frames report).
KERNEL_FILE = (lambda: None).__code__.co_filename
CO_COROUTINE = 0x0080
CELL_FILENAME = re.compile(r'^(\s*)File "<cell-(\d+)>", line (\d+)', re.MULTILINE)
CELL_NAME = re.compile(r'<cell-(\d+)>')

# Rich formats offered by the value of the last expression, IPython style.
RICH_FORMATS = (
    ('_repr_html_', 'html'),
    ('_repr_markdown_', 'markdown'),
    ('_repr_svg_', 'svg'),
    ('_repr_png_', 'png'),
    ('_repr_jpeg_', 'jpeg'),
    ('_repr_pdf_', 'pdf'),
    ('_repr_latex_', 'latex'),
    ('_repr_json_', 'json'),
    ('_repr_javascript_', 'javascript'),
)
MIME_FORMATS = {
    'text/html': 'html',
    'text/markdown': 'markdown',
    'image/svg+xml': 'svg',
    'image/png': 'png',
    'image/jpeg': 'jpeg',
    'application/pdf': 'pdf',
    'text/latex': 'latex',
    'application/json': 'json',
    'application/javascript': 'javascript',
}
BINARY_FORMATS = ('png', 'jpeg', 'pdf')


class ControlChannel:
    """Newline-delimited JSON over a socket or pipe file descriptor."""

    def __init__(self, fd):
        self.fd = fd
        self.pending = b''
        os.set_blocking(fd, True)
        # Subprocesses started with os.system() must not inherit the channel.
        os.set_inheritable(fd, False)

    def receive(self):
        """Return the next message, or None when the host closed the channel."""
        while b'\n' not in self.pending:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b'\n')
        return json.loads(line)

    def send(self, *messages):
        data = ''.join(json.dumps(message) + '\n' for message in messages).encode()
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


class Outcome:
    """What one cell produced: a value to display and/or an exception."""

    def __init__(self):
        self.result = None
        self.error = None


class PythonKernel:
    """Runs cells in one persistent ``__main__`` namespace."""

    def __init__(self, control):
        self.control = control
        self.execution_count = 0
        self.executing = False
        self.interrupt_pending = False
        self.event_loop = None
        self.stdout = open(1, 'w', encoding='utf-8', errors='backslashreplace', buffering=1, closefd=False)
        self.stderr = open(2, 'w', encoding='utf-8', errors='backslashreplace', buffering=1, closefd=False)
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        self.module = types.ModuleType('__main__')
        self.module.__dict__['__builtins__'] = builtins
        self.namespace = self.module.__dict__
        # Keep the kernel's own module alive under another name, give user code a clean __main__
        # (pickle and multiprocessing look up user classes there).
        sys.modules['_tradeswarm_kernel'] = sys.modules['__main__']
        sys.modules['__main__'] = self.module
        if sys.path and os.path.abspath(sys.path[0] or '.') == os.path.dirname(os.path.abspath(__file__)):
            sys.path[0] = ''
        sys.argv = ['']

    def handle_sigint(self, _signum, frame):
        """Raise KeyboardInterrupt in user code only; never inside the kernel's own bookkeeping."""
        if not self.executing:
            return
        if frame is not None and frame.f_code.co_filename == KERNEL_FILE:
            self.interrupt_pending = True
            return
        raise KeyboardInterrupt

    def check_interrupt(self):
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt

    def serve(self):
        self.control.send({
            'type': 'ready',
            'language': 'python',
            'pid': os.getpid(),
            'version': '.'.join(str(part) for part in sys.version_info[:3]),
        })
        while True:
            message = self.control.receive()
            if message is None:
                return
            if message.get('type') == 'execute':
                self.execute(message)

    def execute(self, message):
        self.execution_count += 1
        count = self.execution_count
        execution_id = message['id']
        code = message.get('code', '')
        filename = f'<cell-{count}>'
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        saved_environment = self.apply_environment(message.get('env_vars') or {})
        outcome = Outcome()
        self.interrupt_pending = False
        self.executing = True
        try:
            self.run_cell(code, filename, outcome)
        except BaseException as error:
            outcome.error = error
        finally:
            self.executing = False
            self.interrupt_pending = False
        self.restore_environment(saved_environment)

        messages = []
        if outcome.result is not None and outcome.error is None:
            messages.append(dict(outcome.result, type='result', id=execution_id))
        if outcome.error is not None:
            messages.append(dict(self.format_error(outcome.error), type='error', id=execution_id))
        markers = self.write_markers(message.get('marker', ''))
        messages.append({'type': 'done', 'id': execution_id, 'execution_count': count, 'markers': markers})
        self.control.send(*messages)

    def run_cell(self, code, filename, outcome):
        tree = compile(code, filename, 'exec', flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        last_expression = None
        if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(';'):
            last_expression = ast.Expression(tree.body.pop().value)
        self.run_code(compile(tree, filename, 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT))
        if last_expression is not None:
            ast.fix_missing_locations(last_expression)
            value = self.run_code(compile(last_expression, filename, 'eval', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT))
            if value is not None:
                outcome.result = format_result(value)

    def run_code(self, code):
        self.check_interrupt()
        value = eval(code, self.namespace)
        if code.co_flags & CO_COROUTINE:
            value = self.run_coroutine(value)
        return value

    def run_coroutine(self, coroutine):
        if self.event_loop is None:
            import asyncio
            self.event_loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.event_loop)
        task = self.event_loop.create_task(coroutine)
        try:
            return self.event_loop.run_until_complete(task)
        except BaseException:
            if not task.done():
                task.cancel()
                try:
                    self.event_loop.run_until_complete(task)
                except BaseException:
                    pass
            raise

    def format_error(self, error):
        traceback_module = __import__('traceback')
        frames = error.__traceback__
        has_cell_frame = False
        walker = frames
        while walker is not None:
            if walker.tb_frame.f_code.co_filename.startswith('<cell-'):
                has_cell_frame = True
                break
            walker = walker.tb_next
        # Show frames from the cell down; the kernel's own frames (and asyncio's, when the
        # cell awaited) above it are noise. Errors that never reached the cell (syntax errors)
        # show no frames at all, like Python does.
        while frames is not None and not (has_cell_frame and frames.tb_frame.f_code.co_filename.startswith('<cell-')):
            frames = frames.tb_next
        try:
            text = ''.join(traceback_module.format_exception(type(error), error, frames))
        except BaseException as formatting_error:
            text = f'{type(error).__name__}: (the traceback could not be formatted: {formatting_error!r})\n'
        try:
            value = CELL_NAME.sub(r'Cell In[\1]', str(error))
        except BaseException:
            value = f'<unprintable {type(error).__name__} object>'
        return {
            'name': type(error).__name__,
            'value': value,
            'traceback': CELL_FILENAME.sub(r'\1Cell In[\2], line \3', text).rstrip('\n'),
        }

    def apply_environment(self, env_vars):
        saved = {}
        for key, value in env_vars.items():
            saved[key] = os.environ.get(key)
            os.environ[key] = str(value)
        return saved

    def restore_environment(self, saved):
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def write_markers(self, marker):
        for stream in {id(stream): stream for stream in (sys.stdout, sys.stderr, self.stdout, self.stderr)}.values():
            try:
                stream.flush()
            except BaseException:
                pass
        written = []
        data = marker.encode()
        for name, fd in (('stdout', 1), ('stderr', 2)):
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                written.append(name)
            except OSError:
                pass
        return written


def format_result(value):
    """The result message fields for a value: repr() as text plus any rich formats it offers."""
    result = {'is_main_result': True, 'text': repr(value)}
    mime_bundle = call_repr_method(value, '_repr_mimebundle_')
    if isinstance(mime_bundle, dict):
        for mime_type, data in mime_bundle.items():
            key = MIME_FORMATS.get(mime_type)
            if key is not None:
                add_format(result, key, data)
    for method, key in RICH_FORMATS:
        if key not in result:
            add_format(result, key, call_repr_method(value, method))
    return result


def call_repr_method(value, method):
    if isinstance(value, type):
        return None
    function = getattr(value, method, None)
    if not callable(function):
        return None
    try:
        data = function()
    except Exception:
        return None
    if isinstance(data, tuple) and len(data) == 2:
        data = data[0]
    return data


def add_format(result, key, data):
    if data is None:
        return
    if key in BINARY_FORMATS and isinstance(data, (bytes, bytearray)):
        data = base64.b64encode(data).decode('ascii')
    if key == 'json':
        try:
            json.dumps(data)
        except (TypeError, ValueError):
            return
    elif not isinstance(data, str):
        return
    result[key] = data


def main():
    try:
        control = ControlChannel(CONTROL_FD)
    except OSError as error:
        sys.stderr.write(f'python_kernel.py: no control channel on fd {CONTROL_FD} ({error}); '
                         'start the kernel through Kernel.start() in kernel.ts.\n')
        sys.exit(2)
    kernel = PythonKernel(control)
    signal.signal(signal.SIGINT, kernel.handle_sigint)
    kernel.serve()
    # User threads must not keep a kernel alive once the host has closed the channel.
    os._exit(0)


if __name__ == '__main__':
    main()
