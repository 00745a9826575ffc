import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Sandbox } from '@e2b/code-interpreter';
import type { LocalCloud } from '../../src/localcloud/index.js';
import { describeLocal, itLocal, useBackend } from '../fixtures/backend.js';

const backend = useBackend();
let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await Sandbox.create({ ...backend().connection });
});
afterAll(async () => {
  await sandbox?.kill();
});

describe('code interpreter through the unmodified @e2b/code-interpreter SDK', () => {
  it('keeps Python state across calls and returns the last expression', async () => {
    await sandbox.runCode('import math\nradius = 2');
    const execution = await sandbox.runCode('round(math.pi * radius ** 2, 4)');
    expect(execution.text).toBe('12.5664');
    expect(execution.error).toBeUndefined();
    expect(execution.results[0]?.isMainResult).toBe(true);
  });

  it('returns an exception as name, value and traceback', async () => {
    const execution = await sandbox.runCode('def divide(a, b):\n    return a / b\n\ndivide(1, 0)');
    expect(execution.error?.name).toBe('ZeroDivisionError');
    expect(execution.error?.value).toBe('division by zero');
    expect(execution.error?.traceback).toContain('divide');
    expect(execution.results).toHaveLength(0);
  });

  it('streams stdout and stderr while the code runs', async () => {
    const seen: string[] = [];
    const execution = await sandbox.runCode('import sys, time\nprint("first", flush=True)\ntime.sleep(0.2)\nprint("oops", file=sys.stderr)\nprint("second")', {
      onStdout: (message) => void seen.push(`out@${message.line.trim()}`),
      onStderr: (message) => void seen.push(`err@${message.line.trim()}`),
    });
    expect(seen).toEqual(['out@first', 'err@oops', 'out@second']);
    expect(execution.logs.stdout.join('')).toBe('first\nsecond\n');
    expect(execution.logs.stderr.join('')).toBe('oops\n');
  });

  it('gives each context its own state, and lists, restarts and removes contexts', async () => {
    const context = await sandbox.createCodeContext({ language: 'python', cwd: '/tmp' });
    expect(context.language).toBe('python');
    await sandbox.runCode('secret = 7', { context });
    expect((await sandbox.runCode('secret * 6', { context })).text).toBe('42');
    expect((await sandbox.runCode('import os\nos.getcwd()', { context })).text).toBe("'/tmp'");
    expect((await sandbox.runCode('secret')).error?.name).toBe('NameError');
    expect((await sandbox.listCodeContexts()).map((listed) => listed.id)).toContain(context.id);

    await sandbox.restartCodeContext(context);
    expect((await sandbox.runCode('secret', { context })).error?.name).toBe('NameError');
    await sandbox.removeCodeContext(context);
    expect((await sandbox.listCodeContexts()).map((listed) => listed.id)).not.toContain(context.id);
  });

  it('stops code that runs past its timeout without losing the context', async () => {
    await sandbox.runCode('survivor = "kept"');
    await expect(sandbox.runCode('while True:\n    pass', { timeoutMs: 300 })).rejects.toThrow(/timeout|timed out|abort/i);
    const after = await sandbox.runCode('survivor');
    expect(after.text).toBe("'kept'");
  });

  it('runs JavaScript with its own persistent state', async () => {
    await sandbox.runCode('const prices = [101, 103, 99]', { language: 'javascript' });
    const execution = await sandbox.runCode('prices.reduce((sum, price) => sum + price, 0) / prices.length', { language: 'javascript' });
    expect(execution.text).toBe('101');
    const failed = await sandbox.runCode('null.field', { language: 'javascript' });
    expect(failed.error?.name).toBe('TypeError');
  });

  it('passes env vars to one execution only', async () => {
    const execution = await sandbox.runCode('import os\nos.environ.get("RUN_LABEL")', { envs: { RUN_LABEL: 'backtest-7' } });
    expect(execution.text).toBe("'backtest-7'");
    expect((await sandbox.runCode('import os\nos.environ.get("RUN_LABEL")')).text).toBeUndefined();
  });

  itLocal('E2B cloud runs R, which the local cloud refuses')('says clearly which languages it does not support', async () => {
    await expect(sandbox.runCode('1', { language: 'r' })).rejects.toThrow(/400/);
  });
});

/** The PNG's width and height from its IHDR chunk, after checking the signature. */
function pngSize(base64: string): { width: number; height: number } {
  const bytes = Buffer.from(base64, 'base64');
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(bytes.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/**
 * Skips the test (fails it under CI=true) when the sandbox's Python cannot import `modules`, with
 * the interpreter's own message, which names the Debian package to install on the local cloud.
 */
async function requireModules(context: TestContext, ...modules: string[]): Promise<void> {
  const missing = (await sandbox.runCode(`import ${modules.join(', ')}`)).error;
  if (missing === undefined) return;
  const message = `${missing.name}: ${missing.value}`;
  if (process.env.CI === 'true') throw new Error(`the science stack is missing under CI: ${message}`);
  console.warn(`skipping "${context.task.name}": ${message}`);
  context.skip(message);
}

describe('rich results through the unmodified @e2b/code-interpreter SDK', () => {
  it('returns a matplotlib figure shown with plt.show() as a PNG', async (context) => {
    await requireModules(context, 'matplotlib');
    const execution = await sandbox.runCode(
      ['import matplotlib.pyplot as plt', 'figure = plt.figure(figsize=(4, 3), dpi=100)', 'plt.axes((0, 0, 1, 1))', "plt.axis('off')", 'plt.plot([1, 3, 2])', 'plt.show()', 'print("shown")'].join('\n'),
    );
    expect(execution.error).toBeUndefined();
    expect(execution.logs.stdout).toEqual(['shown\n']);
    expect(execution.results).toHaveLength(1);
    const [chart] = execution.results;
    expect(chart?.isMainResult).toBe(false);
    expect(chart?.text).toBe('<Figure size 400x300 with 1 Axes>');
    // 4 x 3 inches at 100 dpi, plus the 0.1 inch pad of a tight bounding box on each side (less a pixel lost to rounding).
    const { width, height } = pngSize(chart!.png!);
    expect(width).toBeGreaterThanOrEqual(419);
    expect(width).toBeLessThanOrEqual(420);
    expect(height).toBeGreaterThanOrEqual(319);
    expect(height).toBeLessThanOrEqual(320);
    expect(chart?.formats()).toEqual(['png']);
  });

  it('returns a figure left open at the end of a cell as a PNG, once, after the main result, and closes it', async (context) => {
    await requireModules(context, 'matplotlib');
    const execution = await sandbox.runCode('import matplotlib.pyplot as plt\nfigure, axes = plt.subplots()\naxes.bar(["long", "short"], [3, 1])\nlen(axes.patches)');
    expect(execution.error).toBeUndefined();
    expect(execution.results.map((result) => [result.isMainResult, result.text])).toEqual([
      [true, '2'],
      [false, '<Figure size 640x480 with 1 Axes>'],
    ]);
    const { width, height } = pngSize(execution.results[1]!.png!);
    expect(width).toBeGreaterThan(400);
    expect(width).toBeLessThanOrEqual(640);
    expect(height).toBeGreaterThan(300);
    expect(height).toBeLessThanOrEqual(480);
    expect((await sandbox.runCode('plt.get_fignums()')).text).toBe('[]');
  });

  it("returns E2B's chart data beside the PNG: bar, line, pie, scatter, box and whisker, and a superchart of several axes", async (context) => {
    await requireModules(context, 'matplotlib');
    const chartOf = async (code: string): Promise<Record<string, unknown> | undefined> => {
      const execution = await sandbox.runCode(`import matplotlib.pyplot as plt\n${code}\nplt.show()`);
      expect(execution.error).toBeUndefined();
      expect(execution.results).toHaveLength(1);
      expect(execution.results[0]?.png).toBeDefined();
      return execution.results[0]?.chart;
    };
    expect(await chartOf("plt.bar(['A', 'B', 'C'], [100, 200, 300], label='Books Sold')\nplt.xlabel('Authors')\nplt.ylabel('Sold')\nplt.title('Sales')")).toEqual({
      type: 'bar',
      title: 'Sales',
      x_label: 'Authors',
      y_label: 'Sold',
      x_unit: null,
      y_unit: null,
      elements: [
        { label: 'A', group: 'Books Sold', value: 100 },
        { label: 'B', group: 'Books Sold', value: 200 },
        { label: 'C', group: 'Books Sold', value: 300 },
      ],
    });
    const line = await chartOf("plt.plot([1, 2, 3], [4, 5, 6], label='up')\nplt.plot([1, 2, 3], [6, 5, 4], label='down')\nplt.yscale('log')");
    expect(line).toMatchObject({ type: 'line', x_scale: 'linear', y_scale: 'log', elements: [{ label: 'up', points: [[1, 4], [2, 5], [3, 6]] }, { label: 'down', points: [[1, 6], [2, 5], [3, 4]] }] });
    expect((line?.x_ticks as unknown[]).length).toBe((line?.x_tick_labels as unknown[]).length);
    expect(await chartOf("plt.pie([1, 3], labels=['a', 'b'])")).toEqual({ type: 'pie', title: '', elements: [{ label: 'a', angle: 90, radius: 1 }, { label: 'b', angle: 270, radius: 1 }] });
    expect(await chartOf("plt.scatter([1, 2], [3, 4], label='points')")).toMatchObject({ type: 'scatter', elements: [{ label: 'points', points: [[1, 3], [2, 4]] }] });
    const dated = await chartOf("import datetime\nplt.plot([datetime.date(2026, 12, 1), datetime.date(2026, 12, 2)], [1, 2])");
    expect(dated).toMatchObject({ type: 'line', x_scale: 'datetime', elements: [{ points: [['2026-12-01T00:00:00+00:00', 1], ['2026-12-02T00:00:00+00:00', 2]] }] });
    // Class A's 40 is an outlier (below Q1 - 1.5 IQR); the whiskers end at the lowest and highest values kept.
    const scores = "[[85, 90, 78, 92, 88, 40], [95, 89, 76, 91, 84, 87]], labels=['A', 'B']";
    const boxes = {
      type: 'box_and_whisker',
      title: 'Scores',
      x_label: null,
      y_label: 'Score',
      x_unit: null,
      y_unit: null,
      elements: [
        { label: 'A', min: 78, first_quartile: 79.75, median: 86.5, third_quartile: 89.5, max: 92, outliers: [40] },
        { label: 'B', min: 84, first_quartile: 84.75, median: 88, third_quartile: 90.5, max: 95, outliers: [76] },
      ],
    };
    expect(await chartOf(`plt.boxplot(${scores}, showmeans=True)\nplt.title('Scores')\nplt.ylabel('Score')`)).toEqual(boxes);
    expect(await chartOf(`plt.boxplot(${scores}, vert=False, patch_artist=True)\nplt.title('Scores')\nplt.xlabel('Score')`)).toEqual({ ...boxes, x_label: 'Score', y_label: null });
    const superchart = await chartOf("figure, (left, right) = plt.subplots(1, 2)\nfigure.suptitle('Two')\nleft.plot([0, 1], [1, 0])\nright.bar(['x'], [2])");
    expect(superchart).toMatchObject({ type: 'superchart', title: 'Two', elements: [{ type: 'line' }, { type: 'bar', elements: [{ label: 'x', value: 2 }] }] });
    // A figure of nothing the chart kinds describe (an image) has its PNG and no chart.
    expect(await chartOf('plt.imshow([[0, 1], [1, 0]])')).toBeUndefined();
  });

  it('returns a pandas DataFrame as HTML and text', async (context) => {
    await requireModules(context, 'pandas');
    const execution = await sandbox.runCode('import pandas as pd\npd.DataFrame({"symbol": ["AAPL", "MSFT"], "close": [189.5, 402.25]})');
    expect(execution.error).toBeUndefined();
    const [frame] = execution.results;
    expect(frame?.isMainResult).toBe(true);
    expect(frame?.text).toBe('  symbol   close\n0   AAPL  189.50\n1   MSFT  402.25');
    expect(frame?.html).toContain('<table border="1" class="dataframe">');
    expect(frame?.html).toContain('<th>symbol</th>');
    expect(frame?.html).toContain('<td>402.25</td>');
  });

  it('returns display() of JSON and Markdown objects as their types, before the main result', async () => {
    const execution = await sandbox.runCode(
      [
        'class Report:',
        '    def _repr_markdown_(self):',
        '        return "## Fills\\n- AAPL 10 @ 189.5"',
        'class Positions:',
        '    def _repr_json_(self):',
        '        return {"AAPL": 10, "cash": 8105.0}',
        'display(Report(), Positions())',
        '"done"',
      ].join('\n'),
    );
    expect(execution.error).toBeUndefined();
    expect(execution.results.map((result) => result.isMainResult)).toEqual([false, false, true]);
    expect(execution.results[0]?.markdown).toBe('## Fills\n- AAPL 10 @ 189.5');
    expect(execution.results[1]?.json).toEqual({ AAPL: 10, cash: 8105.0 });
    expect(execution.results[2]?.text).toBe("'done'");
  });

  itLocal("the message is the local cloud's own")('names the Debian package of a science module Python cannot find', async () => {
    const context = await sandbox.createCodeContext({ language: 'python' });
    try {
      const execution = await sandbox.runCode("import sys\nsys.path[:] = [entry for entry in sys.path if 'packages' not in entry]\nimport numpy", { context });
      expect(execution.error?.name).toBe('ModuleNotFoundError');
      expect(execution.error?.value).toBe(
        "No module named 'numpy' (the local cloud runs Python code with /usr/bin/python3, which gets numpy from Debian's python3-numpy: " +
          'install it on the host with apt-get install -y --no-install-recommends python3-numpy, see the README)',
      );
    } finally {
      await sandbox.removeCodeContext(context);
    }
  });
});

describeLocal('code interpreter contexts need the sandbox\'s token', "it calls the local cloud's routes with raw HTTP and its tokens; on E2B cloud they sit behind E2B's own proxy", () => {
  const cloud = (): LocalCloud => backend().local;

  interface Created {
    sandboxID: string;
    envdAccessToken: string;
    trafficAccessToken?: string | null;
  }

  /** A sandbox made through the plain REST API, with the tokens it returns. */
  async function createRaw(): Promise<Created> {
    const response = await fetch(`${cloud().apiUrl}/v2/sandboxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': cloud().apiKey },
      body: JSON.stringify({ templateID: 'code-interpreter-v1' }),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as Created;
  }

  function contexts(created: Created, path: string, method: string, headers: Record<string, string> = {}, body?: unknown): Promise<Response> {
    return fetch(`${cloud().sandboxUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'e2b-sandbox-id': created.sandboxID, 'e2b-sandbox-port': '49999', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  it('refuses list, create, restart and remove without a token (401), and with a wrong one (401)', async () => {
    const created = await createRaw();
    try {
      const made = await contexts(created, '/contexts', 'POST', { 'x-access-token': created.envdAccessToken }, { language: 'python' });
      expect(made.status).toBe(200);
      const { id } = (await made.json()) as { id: string };
      const attempts: ReadonlyArray<readonly [string, string]> = [
        ['/contexts', 'GET'],
        ['/contexts', 'POST'],
        [`/contexts/${id}/restart`, 'POST'],
        [`/contexts/${id}`, 'DELETE'],
      ];
      for (const [path, method] of attempts) {
        for (const headers of [{}, { 'x-access-token': 'wrong' }, { 'e2b-traffic-access-token': 'wrong' }] as Array<Record<string, string>>) {
          const response = await contexts(created, path, method, headers, method === 'POST' && path === '/contexts' ? { language: 'python' } : undefined);
          expect(response.status, `${method} ${path} with ${JSON.stringify(headers)}`).toBe(401);
          expect(((await response.json()) as { message: string }).message).toMatch(/X-Access-Token.*E2B-Traffic-Access-Token|access token/i);
        }
      }
      // Nothing was created, restarted or removed by the refused calls.
      const listed = await contexts(created, '/contexts', 'GET', { 'x-access-token': created.envdAccessToken });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as Array<{ id: string }>).map((context) => context.id)).toEqual([id]);
    } finally {
      await fetch(`${cloud().apiUrl}/sandboxes/${created.sandboxID}`, { method: 'DELETE', headers: { 'x-api-key': cloud().apiKey } });
    }
  });

  it('serves them with the access token or the traffic access token the create returned', async () => {
    const created = await createRaw();
    try {
      expect(created.trafficAccessToken).toEqual(expect.any(String));
      expect(created.trafficAccessToken).not.toBe(created.envdAccessToken);
      for (const headers of [{ 'x-access-token': created.envdAccessToken }, { 'e2b-traffic-access-token': created.trafficAccessToken! }] as Array<Record<string, string>>) {
        const made = await contexts(created, '/contexts', 'POST', headers, { language: 'python' });
        expect(made.status).toBe(200);
        const { id } = (await made.json()) as { id: string };
        expect((await contexts(created, `/contexts/${id}/restart`, 'POST', headers)).status).toBe(204);
        expect((await contexts(created, `/contexts/${id}`, 'DELETE', headers)).status).toBe(204);
      }
      // Another sandbox's tokens open nothing here.
      const other = await createRaw();
      try {
        const response = await contexts(created, '/contexts', 'GET', { 'e2b-traffic-access-token': other.trafficAccessToken! });
        expect(response.status).toBe(401);
      } finally {
        await fetch(`${cloud().apiUrl}/sandboxes/${other.sandboxID}`, { method: 'DELETE', headers: { 'x-api-key': cloud().apiKey } });
      }
    } finally {
      await fetch(`${cloud().apiUrl}/sandboxes/${created.sandboxID}`, { method: 'DELETE', headers: { 'x-api-key': cloud().apiKey } });
    }
  });
});
