import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../core/index.js';
import { DETERMINISTIC_REASON, judgeDeterminism, type CodeLanguage } from './determinism.js';

interface Case {
  readonly name: string;
  readonly language: CodeLanguage;
  readonly code: string;
  readonly deterministic: boolean;
  /** Substrings each of which some reason must contain. */
  readonly reasons: readonly string[];
}

const PURE = DETERMINISTIC_REASON;

const CASES: readonly Case[] = [
  // Python, deterministic
  { name: 'py print', language: 'python', code: 'print(1)', deterministic: true, reasons: [PURE] },
  { name: 'py arithmetic', language: 'python', code: 'x = (3 + 4) * 2 ** 10 // 7\nprint(x % 5)', deterministic: true, reasons: [PURE] },
  { name: 'py sum(range)', language: 'python', code: 'print(sum(range(10)))', deterministic: true, reasons: [PURE] },
  { name: 'py list comprehension', language: 'python', code: 'squares = [i * i for i in range(20) if i % 2]\nprint(squares)', deterministic: true, reasons: [PURE] },
  { name: 'py name in a string', language: 'python', code: 'print("random")\nprint(\'import os\')', deterministic: true, reasons: [PURE] },
  { name: 'py name in a comment', language: 'python', code: '# import random; time.time()\nprint(2)  # open("x")', deterministic: true, reasons: [PURE] },
  { name: 'py triple-quoted string', language: 'python', code: 'doc = """\nimport socket\nrandom.random()\n"""\nprint(len(doc))', deterministic: true, reasons: [PURE] },
  { name: 'py pure modules', language: 'python', code: 'import math\nfrom collections import Counter\nprint(math.sqrt(2), Counter("abca"))', deterministic: true, reasons: [PURE] },
  { name: 'py numpy arithmetic', language: 'python', code: 'import numpy as np\nprint(np.arange(10).sum())', deterministic: true, reasons: [PURE] },
  { name: 'py function and kwarg id=', language: 'python', code: 'def f(a, b=2):\n    return a * b\nprint(dict(id=f(3)))', deterministic: true, reasons: [PURE] },
  { name: 'py re.compile is not compile()', language: 'python', code: 'import re\nprint(re.compile(r"\\d+").findall("a1b22"))', deterministic: true, reasons: [PURE] },
  { name: 'py f-string without calls', language: 'python', code: 'x = 3\nprint(f"x={x!r:>5} {{random}}")', deterministic: true, reasons: [PURE] },

  // Python, not deterministic
  { name: 'py import random', language: 'python', code: 'import random\nprint(random.random())', deterministic: false, reasons: ['uses randomness (random.random)'] },
  { name: 'py from random import choice', language: 'python', code: 'from random import choice\nprint(choice([1, 2, 3]))', deterministic: false, reasons: ['uses randomness (random.choice)'] },
  { name: 'py np.random', language: 'python', code: 'import numpy as np; np.random.rand()', deterministic: false, reasons: ['uses randomness (random)'] },
  { name: 'py from numpy.random import', language: 'python', code: 'from numpy.random import default_rng\nprint(default_rng(1).random())', deterministic: false, reasons: ['uses randomness (numpy.random.default_rng)'] },
  { name: 'py time.time', language: 'python', code: 'import time\nprint(time.time())', deterministic: false, reasons: ['reads the clock (time.time)'] },
  { name: 'py datetime.now', language: 'python', code: 'from datetime import datetime\nprint(datetime.now())', deterministic: false, reasons: ['reads the clock (datetime.datetime.now)'] },
  { name: 'py unused clock import', language: 'python', code: 'import time\nprint(1)', deterministic: false, reasons: ['reads the clock (time)'] },
  { name: 'py socket', language: 'python', code: 'import socket\ns = socket.socket()', deterministic: false, reasons: ['may use the network (socket.socket)'] },
  { name: 'py requests', language: 'python', code: 'import requests as r\nr.get("https://example.com")', deterministic: false, reasons: ['may use the network (requests.get)'] },
  { name: 'py open', language: 'python', code: 'with open("/etc/hostname") as f:\n    print(f.read())', deterministic: false, reasons: ['touches files (open)'] },
  { name: 'py os.environ', language: 'python', code: 'import os\nprint(os.environ["HOME"])', deterministic: false, reasons: ['touches files, processes or the environment (os.environ)'] },
  { name: 'py subprocess', language: 'python', code: 'import subprocess\nsubprocess.run(["ls"])', deterministic: false, reasons: ['runs processes (subprocess.run)'] },
  { name: 'py __import__ via string', language: 'python', code: 'm = __import__("os")\nprint(m.getcwd())', deterministic: false, reasons: ['loads or evaluates code at run time (__import__)'] },
  { name: 'py getattr on builtins', language: 'python', code: 'f = getattr(__builtins__, "open")\nprint(f)', deterministic: false, reasons: ['reaches objects by name at run time (getattr)', 'reaches objects by name at run time (__builtins__)'] },
  { name: 'py eval', language: 'python', code: 'print(eval("1 + 1"))', deterministic: false, reasons: ['loads or evaluates code at run time (eval)'] },
  { name: 'py input', language: 'python', code: 'name = input()\nprint(name)', deterministic: false, reasons: ['reads input (input)'] },
  { name: 'py id()', language: 'python', code: 'print(id(object()))', deterministic: false, reasons: ['depends on memory addresses'] },
  { name: 'py unknown module', language: 'python', code: 'import mystery\nprint(mystery.f())', deterministic: false, reasons: ['imports a module not known to be free of side effects (mystery.f)'] },
  { name: 'py call inside an f-string', language: 'python', code: 'import secrets\nprint(f"token={secrets.token_hex(4)}")', deterministic: false, reasons: ['uses randomness (secrets.token_hex)'] },
  { name: 'py class escape', language: 'python', code: 'print(().__class__.__bases__[0].__subclasses__())', deterministic: false, reasons: ['reaches objects by name at run time (__class__)'] },
  { name: 'py shell escape', language: 'python', code: '!ls -la\nprint(1)', deterministic: false, reasons: ['runs processes (shell escape or magic !ls)'] },
  { name: 'py unterminated string', language: 'python', code: 'print("abc)\nimport os', deterministic: false, reasons: ['could not be read reliably'] },
  { name: 'py pandas read_csv', language: 'python', code: 'import pandas as pd\ndf = pd.read_csv("prices.csv")', deterministic: false, reasons: ['touches files (.read_csv)'] },
  { name: 'py numpy now string', language: 'python', code: 'import numpy as np\nprint(np.datetime64("now"))', deterministic: false, reasons: ["reads the clock ('now' as a date)"] },
  { name: 'py relative import', language: 'python', code: 'from . import helper\nprint(helper.f())', deterministic: false, reasons: ['imports a module not known to be free of side effects (local module .)'] },
  { name: 'py yield from open', language: 'python', code: 'def g():\n    yield from open("x")', deterministic: false, reasons: ['touches files (open)'] },
  { name: 'py fullwidth open', language: 'python', code: 'ｏｐｅｎ("x")', deterministic: false, reasons: ['touches files (open)'] },
  { name: 'py threading', language: 'python', code: 'import threading\nthreading.Thread(target=print).start()', deterministic: false, reasons: ['runs concurrent tasks or timers (threading.Thread)'] },

  // JavaScript, deterministic
  { name: 'js console.log', language: 'javascript', code: 'console.log(1 + 2);', deterministic: true, reasons: [PURE] },
  { name: 'js pure function and loop', language: 'javascript', code: 'const xs = [1, 2, 3].map((x) => x * 2);\nlet s = 0;\nfor (let i = 0; i < xs.length; i++) s += xs[i];\nconsole.log(s, Math.max(...xs));', deterministic: true, reasons: [PURE] },
  { name: 'js names in strings and comments', language: 'javascript', code: '// Math.random()\n/* require("fs") */\nconsole.log("Date.now()", \'fetch\');', deterministic: true, reasons: [PURE] },
  { name: 'js template literal text', language: 'javascript', code: 'const n = 2;\nconsole.log(`process ${n * 2} Date`);', deterministic: true, reasons: [PURE] },
  { name: 'js regex with a quote', language: 'javascript', code: 'const s = \'a"b\'.replace(/"/g, "");\nconsole.log(s);', deterministic: true, reasons: [PURE] },
  { name: 'js string-literal property', language: 'javascript', code: 'const o = { price: 3 };\nconsole.log(o["price"] * 2);', deterministic: true, reasons: [PURE] },

  // JavaScript, not deterministic
  { name: 'js Math.random', language: 'javascript', code: 'console.log(Math.random());', deterministic: false, reasons: ['uses randomness (.random)'] },
  { name: 'js new Date()', language: 'javascript', code: 'console.log(new Date());', deterministic: false, reasons: ['reads the clock (Date)'] },
  { name: 'js Date.now()', language: 'javascript', code: 'console.log(Date.now());', deterministic: false, reasons: ['reads the clock (Date)', 'reads the clock (.now)'] },
  { name: 'js performance.now()', language: 'javascript', code: 'const t = performance.now();', deterministic: false, reasons: ['reads the clock (performance)'] },
  { name: 'js require fs', language: 'javascript', code: 'const fs = require("fs");\nconsole.log(fs.readFileSync("/etc/hostname", "utf8"));', deterministic: false, reasons: ['touches files (fs)', 'loads or evaluates code at run time (require)'] },
  { name: 'js dynamic import', language: 'javascript', code: 'const fs = await import("node:fs");', deterministic: false, reasons: ['loads or evaluates code at run time (import())', 'touches files (node:fs)'] },
  { name: 'js static import', language: 'javascript', code: 'import { execSync } from "node:child_process";\nexecSync("ls");', deterministic: false, reasons: ['runs processes (node:child_process)'] },
  { name: 'js globalThis["fetch"]', language: 'javascript', code: 'globalThis["fetch"]("https://example.com");', deterministic: false, reasons: ['reaches objects by name at run time (globalThis)', 'reaches objects by name at run time (["fetch"])'] },
  { name: 'js fetch', language: 'javascript', code: 'const r = await fetch("https://example.com");', deterministic: false, reasons: ['may use the network (fetch)'] },
  { name: 'js process.env', language: 'javascript', code: 'console.log(process.env.HOME);', deterministic: false, reasons: ['reads the environment (process)'] },
  { name: 'js setTimeout', language: 'javascript', code: 'setTimeout(() => console.log(1), 10);', deterministic: false, reasons: ['runs concurrent tasks or timers (setTimeout)'] },
  { name: 'js eval', language: 'javascript', code: 'console.log(eval("1 + 1"));', deterministic: false, reasons: ['loads or evaluates code at run time (eval)'] },
  { name: 'js Function constructor', language: 'javascript', code: 'const f = new Function("return 1");', deterministic: false, reasons: ['loads or evaluates code at run time (Function)'] },
  { name: 'js constructor chain', language: 'javascript', code: 'const F = [].map.constructor;\nF("return 1")();', deterministic: false, reasons: ['loads or evaluates code at run time (.constructor)'] },
  { name: 'js constructor built from strings', language: 'javascript', code: 'const f = []["constr" + "uctor"];', deterministic: false, reasons: ['reaches objects by name at run time (a property name built from strings)'] },
  { name: 'js unicode-escaped eval', language: 'javascript', code: '\\u0065val("1");', deterministic: false, reasons: ['loads or evaluates code at run time (eval)'] },
  { name: 'js call inside template', language: 'javascript', code: 'console.log(`t=${Date.now()}`);', deterministic: false, reasons: ['reads the clock (Date)'] },
  { name: 'js this.fetch', language: 'javascript', code: 'this.fetch("https://example.com");', deterministic: false, reasons: ['may use the network (fetch)'] },
  { name: 'js toLocaleString', language: 'javascript', code: 'console.log((1234.5).toLocaleString());', deterministic: false, reasons: ['reads the environment (.toLocaleString)'] },
  { name: 'js destructured random', language: 'javascript', code: 'const { random } = Math;\nconsole.log(random());', deterministic: false, reasons: ['uses randomness (random)'] },
  { name: 'js constructor name in a variable', language: 'javascript', code: 'const k = "constructor";\nconst F = [][k][k];', deterministic: false, reasons: ['computed access with the name "constructor" in a string'] },
  { name: 'js unterminated comment', language: 'javascript', code: 'console.log(1); /* Math.random()', deterministic: false, reasons: ['could not be read reliably (unterminated comment)'] },
];

describe('judgeDeterminism', () => {
  it('has a table of at least 40 cases in both languages', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(CASES.filter((c) => c.language === 'python').length).toBeGreaterThanOrEqual(20);
    expect(CASES.filter((c) => c.language === 'javascript').length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)('$name', ({ code, language, deterministic, reasons }) => {
    const judgement = judgeDeterminism(code, language);
    expect(judgement.deterministic).toBe(deterministic);
    for (const expected of reasons) {
      expect(judgement.reasons.some((reason) => reason.includes(expected)), `reasons ${JSON.stringify(judgement.reasons)} lack "${expected}"`).toBe(true);
    }
    if (deterministic) expect(judgement.reasons).toEqual([DETERMINISTIC_REASON]);
    else expect(judgement.reasons).not.toContain(DETERMINISTIC_REASON);
  });

  it('lists each reason once, in the order found', () => {
    expect(judgeDeterminism('import random\nrandom.random()\nrandom.random()\nopen("a")', 'python').reasons).toEqual([
      'uses randomness (random.random)',
      'touches files (open)',
    ]);
  });

  it('judges the same code the same way every time', () => {
    const code = 'import time\nprint(time.time())';
    expect(judgeDeterminism(code, 'python')).toEqual(judgeDeterminism(code, 'python'));
  });

  it('rejects an unknown language or non-string code, naming the field', () => {
    expect(() => judgeDeterminism('1', 'ruby' as CodeLanguage)).toThrow(InvalidInputError);
    expect(() => judgeDeterminism('1', 'ruby' as CodeLanguage)).toThrow(/^language: /);
    expect(() => judgeDeterminism(1 as unknown as string, 'python')).toThrow(/^code: /);
  });
});
