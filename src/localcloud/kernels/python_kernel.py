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
        One per display(...) call and per matplotlib figure shown ("is_main_result": false), in the
        order they happened, and one for the value of the cell's last expression (true).
    {"type": "error", "id": 7, "name": "ZeroDivisionError", "value": "...", "traceback": "..."}
    {"type": "done", "id": 7, "execution_count": 3, "markers": ["stdout", "stderr"]}

Everything user code prints goes to the real file descriptors 1 and 2, so output of
print() and of subprocesses (os.system) stays in order. After each execution the kernel
writes the execution's marker to fd 1 and fd 2 (listed in "markers"), then sends "done";
the host reports the execution finished once it has read the markers from both pipes.

Zygote: the started process never runs user code. It has imported everything the kernel needs
and forks a worker that does (a fresh interpreter state in about a millisecond, instead of
starting Python). It relays control lines between the host (fd 3) and the worker (a socket the
worker sees as its fd 3); the worker writes output to fd 1 and 2 directly, and SIGINT sent to the
zygote is passed on to the worker. Messages the zygote itself handles or sends:

Host to zygote:
    {"type": "reset", "token": "t2"}
        Kills the worker and everything it started (the zygote is their subreaper), then forks a
        new worker. The worker first writes the ready fence of "t2" to fd 1 and fd 2 (everything
        before it on the pipes belongs to the old worker), then sends "ready" with "token": "t2".
Zygote to host:
    {"type": "exited", "token": "t1", "exit_code": 1, "signal": null}
        The worker of "t1" ended on its own (or was killed from outside). Its complete control lines
        were forwarded first, and the exit fence of "t1" was written to fd 1 and fd 2 after all it
        printed. The zygote waits for the next "reset".
Fences are markers: NUL "tradeswarm:" token ":ready" NUL, and the same with ":exit".
The worker's "ready" also says "reset": "fork".

Environment read (and removed) by the zygote:
    TRADESWARM_KERNEL_TOKEN=t1       token of the first worker (set by kernel.ts)
    TRADESWARM_KERNEL_USER=uid:gid   the worker drops to this user (groups cleared) before it runs
                                     code; set by the local cloud, which starts the zygote as root
    TRADESWARM_KERNEL_CWD=/path      the worker's working directory, entered as that user
"""

import ast
import base64
import builtins
import ctypes
import importlib.machinery
import io
import json
import linecache
import os
import re
import select
import signal
import sys
import time
# Imported by the zygote, once, rather than by each forked worker that formats its first error.
import traceback
import types

# The C module, not `socket`: the zygote starts with every kernel, and only needs a socket pair.
import _socket

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

# matplotlib's backend in the kernel unless MPLBACKEND names one (as Jupyter's kernel does, it
# overrides matplotlibrc files, Debian's /etc/matplotlibrc asks for TkAgg; matplotlib.use() still
# switches): Agg, with plt.show() and figures left open at the end of a cell sent as PNG results.
MATPLOTLIB_BACKEND = '_tradeswarm_matplotlib_backend'
# Where a cell's last expression puts its value in the namespace, for the kernel to take (and remove).
LAST_VALUE = '_tradeswarm_last_value'
# The science stack, and the Debian package that installs each module for /usr/bin/python3.
DEBIAN_PACKAGES = {
    'numpy': 'python3-numpy',
    'pandas': 'python3-pandas',
    'matplotlib': 'python3-matplotlib',
    'scipy': 'python3-scipy',
}

ENV_TOKEN = 'TRADESWARM_KERNEL_TOKEN'
ENV_USER = 'TRADESWARM_KERNEL_USER'
ENV_CWD = 'TRADESWARM_KERNEL_CWD'
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
READ_CHUNK = 1 << 16
# How long a reset may take to see every process of the old worker gone.
RESET_KILL_DEADLINE_SECONDS = 5.0


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
    """What one cell produced: results to display (in order) and/or an exception."""

    def __init__(self):
        self.results = []
        self.error = None
        # Figures already sent by this cell, which the end of the cell does not send again.
        self.figures_shown = set()


class PythonKernel:
    """Runs cells in one persistent ``__main__`` namespace."""

    def __init__(self, control, dumpable_from_first_execution=False):
        self.control = control
        self.dumpable_from_first_execution = dumpable_from_first_execution
        self.execution_count = 0
        self.executing = False
        self.interrupt_pending = False
        self.event_loop = None
        self.outcome = None
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
        builtins.display = self.display
        sys.meta_path.insert(0, MatplotlibSetup(self))

    def handle_sigint(self, _signum, frame):
        """Raise KeyboardInterrupt in user code only; never inside the kernel's own bookkeeping."""
        if not self.executing:
            return
        if frame is not None and frame.f_code.co_filename == KERNEL_FILE and not called_from_cell(frame):
            self.interrupt_pending = True
            return
        raise KeyboardInterrupt

    def check_interrupt(self):
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt

    def serve(self, token=''):
        self.control.send({
            'type': 'ready',
            'language': 'python',
            'pid': os.getpid(),
            'version': '.'.join(str(part) for part in sys.version_info[:3]),
            'reset': 'fork',
            'token': token,
        })
        while True:
            message = self.control.receive()
            if message is None:
                return
            if message.get('type') == 'execute':
                self.execute(message)

    def execute(self, message):
        if self.dumpable_from_first_execution:
            # As a kernel started as the user would be (its own /proc files readable, tools can attach).
            prctl(PR_SET_DUMPABLE, 1)
            self.dumpable_from_first_execution = False
        self.execution_count += 1
        count = self.execution_count
        execution_id = message['id']
        code = message.get('code', '')
        filename = f'<cell-{count}>'
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        saved_environment = self.apply_environment(message.get('env_vars') or {})
        outcome = Outcome()
        self.outcome = outcome
        self.interrupt_pending = False
        self.executing = True
        try:
            self.run_cell(code, filename, outcome)
        except BaseException as error:
            outcome.error = error
        try:
            self.show_open_figures()
        except BaseException as error:
            if outcome.error is None:
                outcome.error = error
        finally:
            self.executing = False
            self.interrupt_pending = False
            self.outcome = None
        self.restore_environment(saved_environment)

        messages = [dict(result, type='result', id=execution_id) for result in outcome.results]
        if outcome.error is not None:
            messages.append(dict(self.format_error(outcome.error), type='error', id=execution_id))
        markers = self.write_markers(message.get('marker', ''))
        messages.append({'type': 'done', 'id': execution_id, 'execution_count': count, 'markers': markers})
        self.control.send(*messages)

    def run_cell(self, code, filename, outcome):
        tree = compile(code, filename, 'exec', flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        has_value = bool(tree.body) and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(';')
        if has_value:
            # The last expression's value is assigned within the cell's own code, which runs as one:
            # an interrupt always lands in the cell, never in kernel code between its statements.
            last = tree.body[-1]
            tree.body[-1] = ast.copy_location(ast.Assign(targets=[ast.Name(id=LAST_VALUE, ctx=ast.Store())], value=last.value), last)
            ast.fix_missing_locations(tree)
        self.namespace.pop(LAST_VALUE, None)
        self.run_code(compile(tree, filename, 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT))
        value = self.namespace.pop(LAST_VALUE, None)
        if has_value and value is not None:
            outcome.results.append(self.format_shown(value, is_main_result=True))

    def display(self, *objects, raw=False):
        """IPython's display(): each object becomes a result of the running cell (raw: a MIME bundle dict)."""
        if self.outcome is None:
            return
        for value in objects:
            if raw and isinstance(value, dict):
                result = {'is_main_result': False}
                add_mime_bundle(result, value)
                if isinstance(value.get('text/plain'), str):
                    result['text'] = value['text/plain']
            else:
                result = self.format_shown(value, is_main_result=False)
            self.outcome.results.append(result)

    def format_shown(self, value, is_main_result):
        """format_result(), noting a matplotlib figure as shown by this cell."""
        if self.outcome is not None and matplotlib_figure(value):
            self.outcome.figures_shown.add(id(value))
        return format_result(value, is_main_result)

    def show_open_figures(self, close=True):
        """With the kernel's matplotlib backend: sends the open figures this cell has not sent yet, then closes them."""
        pyplot = sys.modules.get('matplotlib.pyplot')
        if pyplot is None or self.outcome is None or pyplot.get_backend() != 'module://' + MATPLOTLIB_BACKEND:
            return
        from matplotlib._pylab_helpers import Gcf
        for manager in Gcf.get_all_fig_managers():
            figure = manager.canvas.figure
            if id(figure) not in self.outcome.figures_shown:
                self.display(figure)
        if close:
            pyplot.close('all')

    def run_code(self, code):
        self.check_interrupt()
        value = eval(code, self.namespace)
        if code.co_flags & CO_COROUTINE:
            value = self.run_coroutine(value)
        return value

    def run_coroutine(self, coroutine):
        if self.event_loop is None:
            # Imported on first use: most cells never await, and it would slow every kernel's start.
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
            text = ''.join(traceback.format_exception(type(error), error, frames))
        except BaseException as formatting_error:
            text = f'{type(error).__name__}: (the traceback could not be formatted: {formatting_error!r})\n'
        try:
            value = CELL_NAME.sub(r'Cell In[\1]', str(error))
        except BaseException:
            value = f'<unprintable {type(error).__name__} object>'
        text = CELL_FILENAME.sub(r'\1Cell In[\2], line \3', text).rstrip('\n')
        hint = missing_package_hint(error)
        if hint:
            value += hint
            text += hint
        return {'name': type(error).__name__, 'value': value, 'traceback': text}

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


def called_from_cell(frame):
    """Whether kernel code runs for the cell (display(), an import hook): an interrupt there is the cell's."""
    while frame is not None:
        if frame.f_code.co_filename.startswith('<cell-'):
            return True
        frame = frame.f_back
    return False


def missing_package_hint(error):
    """For a science module Python could not import: which Debian package installs it, and how."""
    if not isinstance(error, ModuleNotFoundError) or not isinstance(error.name, str):
        return ''
    module = error.name.partition('.')[0]
    package = DEBIAN_PACKAGES.get(module)
    if package is None or importlib.machinery.PathFinder.find_spec(module) is not None:
        return ''
    return (f' (the local cloud runs Python code with {sys.executable}, which gets {module} from '
            f"Debian's {package}: install it on the host with "
            f'apt-get install -y --no-install-recommends {package}, see the README)')


def matplotlib_figure(value):
    module = sys.modules.get('matplotlib.figure')
    return module is not None and isinstance(value, module.Figure)


def format_result(value, is_main_result=True):
    """The result message fields for a value: repr() as text plus any rich formats it offers."""
    result = {'is_main_result': is_main_result, 'text': repr(value)}
    if matplotlib_figure(value):
        # As IPython's inline backend shows a figure: a PNG cropped to what is drawn.
        image = io.BytesIO()
        value.savefig(image, format='png', bbox_inches='tight')
        add_format(result, 'png', image.getvalue())
        # Read after drawing, when the tick labels are set.
        chart = chart_of(value)
        if chart is not None:
            result['chart'] = chart
    mime_bundle = call_repr_method(value, '_repr_mimebundle_')
    if isinstance(mime_bundle, dict):
        add_mime_bundle(result, mime_bundle)
    for method, key in RICH_FORMATS:
        if key not in result:
            add_format(result, key, call_repr_method(value, method))
    return result


def plain(number):
    """A number JSON can carry: a float, or None for NaN and infinities (JSON has neither)."""
    number = float(number)
    return number if number == number and number not in (float('inf'), float('-inf')) else None


# The chart readers below run only for a figure, so matplotlib and these modules of it are loaded already
# (its axes import dates and category to register their converters).

def date_axis(axis):
    """Whether an axis shows dates: its ticks are placed by one of matplotlib's date locators."""
    from matplotlib import dates
    return isinstance(axis.get_major_locator(), dates.DateLocator)


def axis_values(axis, values):
    """Values of an axis as the chart gives them: ISO dates on a date axis, else numbers."""
    if date_axis(axis):
        from matplotlib import dates
        return [dates.num2date(float(value)).isoformat() for value in values]
    return [plain(value) for value in values]


def axis_scale(axis, scale):
    """The axis's scale (linear, log, ...), or datetime or categorical for dates and strings on a linear one."""
    from matplotlib import category
    if date_axis(axis):
        return 'datetime'
    if isinstance(axis.get_major_locator(), category.StrCategoryLocator):
        return 'categorical'
    return scale


def chart_2d(ax, kind):
    return {'type': kind, 'title': ax.get_title(), 'x_label': ax.get_xlabel() or None, 'y_label': ax.get_ylabel() or None,
            'x_unit': None, 'y_unit': None}


def point_chart(ax, kind, series):
    """A line or scatter chart: each series' label and points, and both axes' ticks and scales."""
    chart = chart_2d(ax, kind)
    for letter, axis, scale in (('x', ax.xaxis, ax.get_xscale()), ('y', ax.yaxis, ax.get_yscale())):
        ticks = axis.get_ticklocs()
        chart[f'{letter}_ticks'] = axis_values(axis, ticks)
        chart[f'{letter}_tick_labels'] = [label.get_text() for label in axis.get_ticklabels()]
        chart[f'{letter}_scale'] = axis_scale(axis, scale)
    chart['elements'] = [
        {'label': label, 'points': [list(point) for point in zip(axis_values(ax.xaxis, xs), axis_values(ax.yaxis, ys))]}
        for label, xs, ys in series
    ]
    return chart


def tick_label_at(axis, centre):
    """The label of the axis's tick nearest to a position ('' when there is none)."""
    ticks = list(axis.get_ticklocs())
    labels = [label.get_text() for label in axis.get_ticklabels()]
    if not ticks:
        return ''
    nearest = min(range(len(ticks)), key=lambda index: abs(ticks[index] - centre))
    return labels[nearest] if nearest < len(labels) else ''


def bar_chart(ax, containers):
    """A bar chart: one element per bar, its tick label, its group (the container's label) and its height."""
    chart = chart_2d(ax, 'bar')
    elements = []
    for number, container in enumerate(containers):
        group = container.get_label()
        if not group or group.startswith('_'):
            group = f'Group {number}'
        vertical = getattr(container, 'orientation', 'vertical') != 'horizontal'
        axis = ax.xaxis if vertical else ax.yaxis
        for bar in container.patches:
            centre = bar.get_x() + bar.get_width() / 2 if vertical else bar.get_y() + bar.get_height() / 2
            elements.append({'label': tick_label_at(axis, centre), 'group': group, 'value': plain(bar.get_height() if vertical else bar.get_width())})
    chart['elements'] = elements
    return chart


def rectangle(points):
    """(left, right, bottom, top) of a closed axis-aligned rectangle drawn point by point, else None."""
    xs = sorted({float(x) for x, _ in points})
    ys = sorted({float(y) for _, y in points})
    return (xs[0], xs[1], ys[0], ys[1]) if len(points) >= 5 and len(xs) == 2 and len(ys) == 2 else None


def read_boxes(boxes, segments, markers):
    """
    Each box's centre and statistics, the boxes given as (position from, position to, first quartile, third quartile)
    and every line as (positions, values) in the orientation tried: the median is the segment across the
    box at one value, a whisker the segment at one position that leaves the box's end, outliers the
    markers beyond the whiskers (markers inside them are means). None unless every box has its median.
    """
    read = []
    for low, high, first, third in boxes:
        inside = lambda positions: all(low <= position <= high for position in positions)
        medians = [values[0] for positions, values in segments if values[0] == values[1] and first <= values[0] <= third and inside(positions)]
        if not medians:
            return None
        whiskers = [values for positions, values in segments if positions[0] == positions[1] and inside(positions)]
        least = min([min(values) for values in whiskers if max(values) == first], default=first)
        most = max([max(values) for values in whiskers if min(values) == third], default=third)
        outliers = [value for positions, values in markers if inside(positions) for value in values if value < least or value > most]
        read.append(((low + high) / 2, {'min': plain(least), 'first_quartile': plain(first), 'median': plain(medians[0]),
                                        'third_quartile': plain(third), 'max': plain(most), 'outliers': [plain(value) for value in outliers]}))
    return read


def box_chart(ax):
    """
    A box plot as `boxplot` draws it (boxes as lines, or as patches with `patch_artist=True`; upright or
    lying): one element per box, labelled by the nearest tick of the axis the boxes stand on. None when
    the axes holds anything else.
    """
    from matplotlib import patches
    if ax.collections or any(not isinstance(patch, patches.PathPatch) for patch in ax.patches):
        return None
    shapes = [patch.get_path().vertices.tolist() for patch in ax.patches]
    segments, markers = [], []
    for line in ax.get_lines():
        points = [(float(x), float(y)) for x, y in zip(line.get_xdata(orig=False), line.get_ydata(orig=False))]
        if line.get_linestyle() in ('None', '', ' '):
            markers.append(points)
        elif len(points) == 2:
            segments.append(points)
        else:
            shapes.append(points)
    rectangles = [rectangle(shape) for shape in shapes]
    if not rectangles or None in rectangles:
        return None
    for upright, axis in ((True, ax.xaxis), (False, ax.yaxis)):
        turn = (lambda points: ([x for x, _ in points], [y for _, y in points])) if upright else (lambda points: ([y for _, y in points], [x for x, _ in points]))
        boxes = [(left, right, bottom, top) if upright else (bottom, top, left, right) for left, right, bottom, top in rectangles]
        read = read_boxes(boxes, [turn(points) for points in segments], [turn(points) for points in markers])
        if read is not None:
            chart = chart_2d(ax, 'box_and_whisker')
            chart['elements'] = [{'label': tick_label_at(axis, centre), **stats} for centre, stats in read]
            return chart
    return None


def axes_chart(ax):
    """E2B's chart data for one axes: pie, bar, box and whisker, line or scatter; None when it is none of these."""
    from matplotlib import collections, container, patches
    wedges = [patch for patch in ax.patches if isinstance(patch, patches.Wedge)]
    if wedges:
        return {'type': 'pie', 'title': ax.get_title(),
                'elements': [{'label': wedge.get_label(), 'angle': plain(wedge.theta2 - wedge.theta1), 'radius': plain(wedge.r)} for wedge in wedges]}
    bars = [bars for bars in ax.containers if isinstance(bars, container.BarContainer)]
    if bars:
        return bar_chart(ax, bars)
    boxes = box_chart(ax)
    if boxes is not None:
        return boxes
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 0]
    scatters = [collection for collection in ax.collections if isinstance(collection, collections.PathCollection)]
    if lines and not scatters:
        return point_chart(ax, 'line', [(line.get_label(), line.get_xdata(orig=False), line.get_ydata(orig=False)) for line in lines])
    if scatters and not lines:
        series = []
        for collection in scatters:
            offsets = collection.get_offsets()
            series.append((collection.get_label(), [offset[0] for offset in offsets], [offset[1] for offset in offsets]))
        return point_chart(ax, 'scatter', series)
    return None


def chart_of(figure):
    """
    A figure's data as E2B's code interpreter gives it beside the PNG (`results[i].chart`): one axes'
    pie, bar, box and whisker, line or scatter chart, or a `superchart` of the charts of several axes. None when no
    axes is one of those kinds, or the figure cannot be read (a chart is extra: the PNG stands).
    """
    try:
        charts = [chart for chart in (axes_chart(ax) for ax in figure.get_axes()) if chart is not None]
    except Exception:
        return None
    if not charts:
        return None
    if len(charts) == 1:
        return charts[0]
    title = figure._suptitle.get_text() if getattr(figure, '_suptitle', None) is not None else ''
    return {'type': 'superchart', 'title': title, 'elements': charts}


def add_mime_bundle(result, mime_bundle):
    for mime_type, data in mime_bundle.items():
        key = MIME_FORMATS.get(mime_type)
        if key is not None and key not in result:
            add_format(result, key, data)


class MatplotlibSetup:
    """A meta path finder: gives matplotlib the kernel's backend by default, and serves that backend."""

    def __init__(self, kernel):
        self.kernel = kernel

    def find_spec(self, name, path=None, target=None):
        if name == MATPLOTLIB_BACKEND:
            return importlib.machinery.ModuleSpec(name, MatplotlibBackendLoader(self.kernel))
        if name != 'matplotlib':
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            if not os.environ.get('MPLBACKEND'):
                module.rcParams['backend'] = 'module://' + MATPLOTLIB_BACKEND

        spec.loader.exec_module = exec_module
        return spec


class MatplotlibBackendLoader:
    """The kernel's matplotlib backend: Agg's canvas; show() sends the open figures as results."""

    def __init__(self, kernel):
        self.kernel = kernel

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from matplotlib.backend_bases import FigureManagerBase
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        module.FigureCanvas = FigureCanvasAgg
        module.FigureManager = FigureManagerBase
        kernel = self.kernel

        def show(*_args, **_kwargs):
            kernel.show_open_figures()

        module.show = show


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


libc = ctypes.CDLL(None, use_errno=True)


def prctl(option, value):
    if libc.prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'prctl({option}) failed: {os.strerror(error)}')


def fence(token, kind):
    return f'\0tradeswarm:{token}:{kind}\0'.encode()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def parse_user(text):
    """'1000:1000' -> (1000, 1000); None when unset (the worker keeps the zygote's user)."""
    if not text:
        return None
    uid, _, gid = text.partition(':')
    return int(uid), int(gid or uid)


def run_worker(control_fd, token, user, cwd, zygote_pid):
    """In the forked child: become a fresh kernel process as `user` in `cwd`, then serve. Never returns."""
    status = 1
    try:
        os.dup2(control_fd, CONTROL_FD)
        os.closerange(CONTROL_FD + 1, os.sysconf('SC_OPEN_MAX'))
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # Until the kernel installs its handler, an interrupt meant for the previous worker is dropped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Everything on fd 1 and 2 before this belongs to the previous worker.
        for fd in (1, 2):
            write_all(fd, fence(token, 'ready'))
        if user is not None:
            uid, gid = user
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
                raise OSError(f'could not drop to uid {uid} and gid {gid}')
            # Undumpable until its first execution (whatever fs.suid_dumpable says): no other process of
            # the user can ptrace a fresh worker or open its /proc files, so none can take it over before
            # it runs the code it was forked for. Clients may build on that (the service's tidy-up does).
            prctl(PR_SET_DUMPABLE, 0)
        # The worker must not outlive the zygote (whose death the host takes for the kernel's).
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote_pid:
            os._exit(1)
        if cwd:
            try:
                os.chdir(cwd)
            except OSError as error:
                sys.stderr.write(f"python_kernel.py: can't enter the working directory {cwd}: {error.strerror}\n")
                sys.stderr.flush()
                os._exit(1)
        kernel = PythonKernel(ControlChannel(CONTROL_FD), dumpable_from_first_execution=user is not None)
        signal.signal(signal.SIGINT, kernel.handle_sigint)
        kernel.serve(token)
        status = 0
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    # User threads must not keep a kernel alive once the channel is closed.
    os._exit(status)


class Worker:
    __slots__ = ('pid', 'socket', 'token', 'inbox', 'outbox', 'reading')

    def __init__(self, pid, sock, token):
        self.pid = pid
        self.socket = sock
        self.token = token
        self.inbox = b''
        self.outbox = b''
        self.reading = True


class Zygote:
    """Holds the host's control channel and forks one worker at a time (see the module header)."""

    def __init__(self, control_fd):
        self.control_fd = control_fd
        os.set_blocking(control_fd, True)
        os.set_inheritable(control_fd, False)
        self.first_token = os.environ.pop(ENV_TOKEN, '')
        self.user = parse_user(os.environ.pop(ENV_USER, ''))
        self.cwd = os.environ.pop(ENV_CWD, '')
        self.pid = os.getpid()
        self.worker = None
        self.host_inbox = b''
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self.wake_fd = wake_read
        signal.set_wakeup_fd(wake_write)
        # A handler (not SIG_IGN), so children are not reaped automatically and waitpid sees them.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, self.forward_sigint)
        # Orphans of the worker come back to the zygote, so a reset finds every one of them.
        prctl(PR_SET_CHILD_SUBREAPER, 1)

    def forward_sigint(self, _signum, _frame):
        if self.worker is not None:
            try:
                os.kill(self.worker.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def send_host(self, data):
        write_all(self.control_fd, data)

    def spawn(self, token):
        parent_socket, child_socket = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            parent_socket.close()
            run_worker(child_socket.fileno(), token, self.user, self.cwd, self.pid)
        child_socket.close()
        parent_socket.setblocking(False)
        self.worker = Worker(pid, parent_socket, token)

    def serve(self):
        self.spawn(self.first_token)
        while True:
            poller = select.poll()
            poller.register(self.control_fd, select.POLLIN)
            poller.register(self.wake_fd, select.POLLIN)
            worker = self.worker
            if worker is not None:
                events = (select.POLLIN if worker.reading else 0) | (select.POLLOUT if worker.outbox else 0)
                if events:
                    poller.register(worker.socket.fileno(), events)
            for fd, events in poller.poll():
                if fd == self.control_fd:
                    self.read_host()
                elif fd == self.wake_fd:
                    try:
                        os.read(fd, 4096)
                    except BlockingIOError:
                        pass
                elif self.worker is worker and worker is not None:
                    if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        self.read_worker(worker)
                    if events & select.POLLOUT:
                        self.flush_worker(worker)
            self.reap()

    def read_host(self):
        data = os.read(self.control_fd, READ_CHUNK)
        if not data:
            # The host is gone: nothing may be left running.
            self.kill_descendants()
            os._exit(0)
        self.host_inbox += data
        while b'\n' in self.host_inbox:
            line, _, self.host_inbox = self.host_inbox.partition(b'\n')
            if b'"reset"' in line:
                message = json.loads(line)
                if message.get('type') == 'reset':
                    self.reset(str(message.get('token', '')))
                    continue
            if self.worker is not None:
                self.worker.outbox += line + b'\n'
                self.flush_worker(self.worker)

    def flush_worker(self, worker):
        try:
            while worker.outbox:
                worker.outbox = worker.outbox[worker.socket.send(worker.outbox):]
        except BlockingIOError:
            pass
        except OSError:
            worker.outbox = b''

    def read_worker(self, worker):
        """Forwards complete lines only, so a worker killed mid-line cannot garble the host's stream."""
        while True:
            try:
                data = worker.socket.recv(READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b''
            if not data:
                worker.reading = False
                return
            worker.inbox += data
            end = worker.inbox.rfind(b'\n')
            if end >= 0:
                self.send_host(worker.inbox[:end + 1])
                worker.inbox = worker.inbox[end + 1:]

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.worker
            if worker is not None and pid == worker.pid:
                self.read_worker(worker)
                worker.socket.close()
                self.worker = None
                # After everything the worker printed: the host waits for these before it reports the end.
                for fd in (1, 2):
                    try:
                        write_all(fd, fence(worker.token, 'exit'))
                    except OSError:
                        pass
                signaled = os.WIFSIGNALED(status)
                self.send_host((json.dumps({
                    'type': 'exited',
                    'token': worker.token,
                    'exit_code': None if signaled else os.waitstatus_to_exitcode(status),
                    'signal': os.WTERMSIG(status) if signaled else None,
                }) + '\n').encode())

    def reset(self, token):
        worker = self.worker
        self.worker = None
        if worker is not None:
            worker.socket.close()
        self.kill_descendants()
        self.spawn(token)

    def descendants(self):
        parents = {}
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            try:
                with open(f'/proc/{name}/stat', 'rb') as stat:
                    fields = stat.read().rsplit(b')', 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(name)] = int(fields[1])
        found = []
        wanted = {self.pid}
        grew = True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in wanted and pid not in wanted:
                    wanted.add(pid)
                    found.append(pid)
                    grew = True
        return found

    def kill_descendants(self):
        """SIGKILLs the worker and everything it started, and reaps them, before a new worker starts."""
        deadline = time.monotonic() + RESET_KILL_DEADLINE_SECONDS
        while True:
            victims = self.descendants()
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
            if not victims or time.monotonic() > deadline:
                return
            time.sleep(0.0002)


def main():
    try:
        os.fstat(CONTROL_FD)
    except OSError as error:
        sys.stderr.write(f'python_kernel.py: no control channel on fd {CONTROL_FD} ({error}); '
                         'start the kernel through Kernel.start() in kernel.ts.\n')
        sys.exit(2)
    Zygote(CONTROL_FD).serve()


if __name__ == '__main__':
    main()
