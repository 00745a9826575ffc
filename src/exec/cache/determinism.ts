import { InvalidInputError } from '../../core/index.js';

/** A language the code-execution service runs. */
export type CodeLanguage = 'python' | 'javascript';

/** Whether a program looks deterministic, and why; sent back to the user with the result. */
export interface DeterminismJudgement {
  /** True only when no source of nondeterminism was found. */
  readonly deterministic: boolean;
  /**
   * Short sentences, e.g. `uses randomness (random.choice)` or `reads the clock (Date)`; for
   * deterministic code exactly one, {@link DETERMINISTIC_REASON}.
   */
  readonly reasons: string[];
}

/** The single reason given for code judged deterministic. */
export const DETERMINISTIC_REASON = 'no randomness, clock, network, file, environment or process access found';

/** The sentence that starts each reason; the thing found follows in parentheses. */
const KIND = {
  randomness: 'uses randomness',
  clock: 'reads the clock',
  network: 'may use the network',
  files: 'touches files',
  environment: 'reads the environment',
  input: 'reads input',
  processes: 'runs processes',
  concurrency: 'runs concurrent tasks or timers',
  dynamic: 'loads or evaluates code at run time',
  reflection: 'reaches objects by name at run time',
  memory: 'depends on memory addresses, hash seeds or uninitialised memory',
  gc: 'depends on garbage collection timing',
  unknownModule: 'imports a module not known to be free of side effects',
  unreadable: 'could not be read reliably',
  os: 'touches files, processes or the environment',
} as const;

type Kind = (typeof KIND)[keyof typeof KIND];

interface Token {
  readonly kind: 'name' | 'string' | 'number' | 'punct' | 'regex';
  readonly value: string;
}

/**
 * Judges whether `code` is deterministic: whether running it twice with the same env gives the same
 * output, so its result may be cached. A false "deterministic" is the dangerous error, so the check is
 * conservative: anything that might read randomness, the clock, the network, files, the environment,
 * input or processes, that loads or evaluates code at run time, that reaches globals or builtins by
 * name, or that imports a module not known to be pure, makes the code non-deterministic.
 *
 * How: the code is split into tokens (comments dropped, string literals kept apart from code, f-string
 * and template-literal expressions scanned as code), then imports, names and attribute accesses are
 * matched against tables. `print("random")` is therefore fine, `import random` is not; dynamic access
 * (`__import__("os")`, `getattr(...)`, `globalThis["fetch"]`, `x["constructor"]`) is flagged by the
 * means of access, whatever the string says. Code the tokeniser cannot read (an unterminated string,
 * comment, regular expression or f-string expression) is judged non-deterministic.
 *
 * It is a heuristic, not a proof. It cannot see:
 * - state from earlier runs: it assumes a fresh interpreter. In a stateful kernel (a reused Jupyter
 *   context) a name bound earlier (`r = random`) is invisible here; cache only fresh-context runs;
 * - obfuscation that builds names from pieces (`"constr" + "uctor"` fetched into a variable, then
 *   called later), or sloppy-mode `this` returned from a function and used as the global object
 *   (only `this[…]`, `this.<global>` and the usual members such as `.env` and `.now` are caught);
 * - nondeterminism inside pure-looking operations: iteration order of Python sets of strings (hash
 *   randomisation), default `repr` showing memory addresses (`print(object())`), floating-point
 *   differences between machines, thread-count-dependent results inside numeric libraries;
 * - what allowed libraries (numpy, pandas) do beyond the members it knows (`np.random`, `read_*`,
 *   `to_csv`, `load`, `save`, `empty`, `.now()`, `'now'`/`'today'` date strings, `.sample`);
 * - resource-dependent behaviour: the same program can time out or run out of memory on one run only.
 *
 * False alarms are accepted (a user's own `random` variable, `x.open()` on their own object); they only
 * cost a cache miss.
 * @throws {InvalidInputError} (`code` or `language`) when `code` is not a string or `language` is not
 *   `python` or `javascript`.
 */
export function judgeDeterminism(code: string, language: CodeLanguage): DeterminismJudgement {
  if (typeof code !== 'string') throw new InvalidInputError('code', `must be a string, got ${typeof code}`);
  if (language !== 'python' && language !== 'javascript') {
    throw new InvalidInputError('language', `must be 'python' or 'javascript', got ${JSON.stringify(language)}`);
  }
  const findings = new Findings();
  if (language === 'python') judgePython(code, findings);
  else judgeJavaScript(code, findings);
  const reasons = findings.list();
  return reasons.length === 0 ? { deterministic: true, reasons: [DETERMINISTIC_REASON] } : { deterministic: false, reasons };
}

/** Reasons in the order found, without duplicates. */
class Findings {
  private readonly reasons = new Set<string>();

  add(kind: Kind, what: string): void {
    this.reasons.add(`${kind} (${what})`);
  }

  list(): string[] {
    return [...this.reasons];
  }
}

// ---------------------------------------------------------------------------------------------------
// Shared lexing helpers

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0' || c === '\ufeff';
}

/** ASCII letters, `_`, and (conservatively) any non-ASCII, non-space character. */
function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || (c > '\u007f' && !isSpace(c) && c !== '\u2028' && c !== '\u2029');
}

function isIdentPart(c: string): boolean {
  return isIdentStart(c) || isDigit(c);
}

function readNumber(src: string, start: number, out: Token[]): number {
  let i = start + 1;
  while (i < src.length && (isIdentPart(src[i]!) || src[i] === '.')) i++;
  out.push({ kind: 'number', value: src.slice(start, i) });
  return i;
}

/** Index after the quoted run starting at `start` (a quote), honouring backslash escapes; -1 when unterminated. */
function skipQuoted(src: string, start: number): number {
  const quote = src[start];
  for (let i = start + 1; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (c === quote) return i + 1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------
// Python

/** String prefixes; `f` and `t` strings hold expressions that are code. */
const PY_STRING_PREFIX = /^(?:[rRbBuUfFtT]|[rR][bBfFtT]|[bBfFtT][rR])$/;

function lexPython(src: string, out: Token[], problems: string[]): void {
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (isSpace(c) || c === '\\') {
      i++;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < src.length && isIdentPart(src[j]!)) j++;
      const word = src.slice(i, j);
      const next = src[j];
      if ((next === '"' || next === "'") && PY_STRING_PREFIX.test(word)) {
        i = lexPythonString(src, j, /[fFtT]/.test(word), out, problems);
      } else {
        // Python folds identifiers with NFKC: a fullwidth `ｏｐｅｎ` is `open`.
        out.push({ kind: 'name', value: word.normalize('NFKC') });
        i = j;
      }
    } else if (c === '"' || c === "'") {
      i = lexPythonString(src, i, false, out, problems);
    } else if (isDigit(c)) {
      i = readNumber(src, i, out);
    } else {
      out.push({ kind: 'punct', value: c });
      i++;
    }
  }
}

/** Lexes the string whose opening quote is at `start`; returns the index after it. */
function lexPythonString(src: string, start: number, formatted: boolean, out: Token[], problems: string[]): number {
  const quote = src[start]!;
  const closer = src.startsWith(quote.repeat(3), start) ? quote.repeat(3) : quote;
  const bodyStart = start + closer.length;
  let i = bodyStart;
  for (;;) {
    if (i >= src.length || (closer.length === 1 && src[i] === '\n')) {
      problems.push('unterminated string');
      out.push({ kind: 'string', value: src.slice(bodyStart, i) });
      return i;
    }
    if (src[i] === '\\') i += 2;
    else if (src.startsWith(closer, i)) break;
    else i++;
  }
  const body = src.slice(bodyStart, i);
  out.push({ kind: 'string', value: body });
  if (formatted) lexFormattedExpressions(body, out, problems);
  return i + closer.length;
}

/** Lexes the `{expression}` parts of an f-string body as Python code. */
function lexFormattedExpressions(body: string, out: Token[], problems: string[]): void {
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if ((c === '{' || c === '}') && body[i + 1] === c) {
      i++;
      continue;
    }
    if (c !== '{') continue;
    let depth = 1;
    let j = i + 1;
    while (j < body.length && depth > 0) {
      const d = body[j]!;
      if (d === '"' || d === "'") {
        const end = skipQuoted(body, j);
        if (end < 0) break;
        j = end;
        continue;
      }
      if (d === '{' || d === '(' || d === '[') depth++;
      else if (d === '}' || d === ')' || d === ']') depth--;
      j++;
    }
    if (depth > 0) {
      problems.push('unterminated f-string expression');
      return;
    }
    lexPython(body.slice(i + 1, j - 1), out, problems);
    i = j - 1;
  }
}

/** Modules (or module prefixes) and what they give access to. Longest dotted prefix wins. */
const PY_MODULES: Readonly<Record<string, Kind | 'pure'>> = {
  random: KIND.randomness,
  secrets: KIND.randomness,
  uuid: KIND.randomness,
  'numpy.random': KIND.randomness,
  time: KIND.clock,
  datetime: KIND.clock,
  calendar: KIND.clock,
  zoneinfo: KIND.environment,
  os: KIND.os,
  sys: KIND.environment,
  platform: KIND.environment,
  getpass: KIND.environment,
  locale: KIND.environment,
  pwd: KIND.environment,
  grp: KIND.environment,
  resource: KIND.environment,
  sysconfig: KIND.environment,
  socket: KIND.network,
  ssl: KIND.network,
  select: KIND.network,
  selectors: KIND.network,
  urllib: KIND.network,
  urllib3: KIND.network,
  http: KIND.network,
  requests: KIND.network,
  httpx: KIND.network,
  aiohttp: KIND.network,
  websockets: KIND.network,
  ftplib: KIND.network,
  smtplib: KIND.network,
  poplib: KIND.network,
  imaplib: KIND.network,
  xmlrpc: KIND.network,
  webbrowser: KIND.network,
  subprocess: KIND.processes,
  multiprocessing: KIND.processes,
  pty: KIND.processes,
  signal: KIND.processes,
  threading: KIND.concurrency,
  _thread: KIND.concurrency,
  asyncio: KIND.concurrency,
  concurrent: KIND.concurrency,
  sched: KIND.concurrency,
  pathlib: KIND.files,
  shutil: KIND.files,
  tempfile: KIND.files,
  glob: KIND.files,
  fnmatch: 'pure',
  io: KIND.files,
  fileinput: KIND.files,
  sqlite3: KIND.files,
  pickle: KIND.dynamic,
  marshal: KIND.dynamic,
  shelve: KIND.files,
  dbm: KIND.files,
  zipfile: KIND.files,
  tarfile: KIND.files,
  gzip: KIND.files,
  bz2: KIND.files,
  lzma: KIND.files,
  logging: KIND.files,
  mmap: KIND.files,
  importlib: KIND.dynamic,
  builtins: KIND.reflection,
  runpy: KIND.dynamic,
  code: KIND.dynamic,
  codeop: KIND.dynamic,
  ctypes: KIND.dynamic,
  inspect: KIND.reflection,
  gc: KIND.reflection,
  weakref: KIND.gc,
  // Known to compute without reaching outside the process (their clock/file members are checked by name).
  __future__: 'pure',
  math: 'pure',
  cmath: 'pure',
  statistics: 'pure',
  fractions: 'pure',
  decimal: 'pure',
  itertools: 'pure',
  functools: 'pure',
  operator: 'pure',
  collections: 'pure',
  heapq: 'pure',
  bisect: 'pure',
  re: 'pure',
  string: 'pure',
  json: 'pure',
  csv: 'pure',
  dataclasses: 'pure',
  typing: 'pure',
  typing_extensions: 'pure',
  enum: 'pure',
  abc: 'pure',
  copy: 'pure',
  numbers: 'pure',
  array: 'pure',
  struct: 'pure',
  textwrap: 'pure',
  unicodedata: 'pure',
  base64: 'pure',
  binascii: 'pure',
  hashlib: 'pure',
  hmac: 'pure',
  zlib: 'pure',
  pprint: 'pure',
  contextlib: 'pure',
  keyword: 'pure',
  difflib: 'pure',
  graphlib: 'pure',
  reprlib: 'pure',
  numpy: 'pure',
  pandas: 'pure',
};

/** The access a module gives, or undefined when it is known to be pure. */
function pythonModuleKind(path: string): Kind | undefined {
  const parts = path.split('.');
  for (let n = parts.length; n > 0; n--) {
    const kind = PY_MODULES[parts.slice(0, n).join('.')];
    if (kind !== undefined) return kind === 'pure' ? undefined : kind;
  }
  return KIND.unknownModule;
}

/** Names flagged wherever they appear. */
const PY_ANY_NAMES: Readonly<Record<string, Kind>> = {
  random: KIND.randomness,
  open: KIND.files,
  __import__: KIND.dynamic,
  __builtins__: KIND.reflection,
  __globals__: KIND.reflection,
  __subclasses__: KIND.reflection,
  __class__: KIND.reflection,
  __bases__: KIND.reflection,
  __base__: KIND.reflection,
  __mro__: KIND.reflection,
  __code__: KIND.reflection,
  __closure__: KIND.reflection,
  __loader__: KIND.reflection,
  __spec__: KIND.reflection,
  __dict__: KIND.reflection,
  __getattribute__: KIND.reflection,
  __reduce__: KIND.reflection,
  __reduce_ex__: KIND.reflection,
  get_ipython: KIND.processes,
};

/** Names flagged when not an attribute (`x.name`), i.e. builtins. */
const PY_BUILTIN_NAMES: Readonly<Record<string, Kind>> = {
  eval: KIND.dynamic,
  exec: KIND.dynamic,
  compile: KIND.dynamic,
  input: KIND.input,
  breakpoint: KIND.input,
  help: KIND.input,
  globals: KIND.reflection,
  locals: KIND.reflection,
  vars: KIND.reflection,
  getattr: KIND.reflection,
  setattr: KIND.reflection,
  delattr: KIND.reflection,
  id: KIND.memory,
  hash: KIND.memory,
};

/** Attribute names flagged on any object (numpy, pandas, datetime-likes reached without an import). */
const PY_MEMBERS: Readonly<Record<string, Kind>> = {
  now: KIND.clock,
  today: KIND.clock,
  utcnow: KIND.clock,
  time_ns: KIND.clock,
  perf_counter: KIND.clock,
  monotonic: KIND.clock,
  process_time: KIND.clock,
  sample: KIND.randomness,
  shuffle: KIND.randomness,
  environ: KIND.environment,
  getenv: KIND.environment,
  getcwd: KIND.environment,
  system: KIND.processes,
  popen: KIND.processes,
  load: KIND.files,
  loadtxt: KIND.files,
  genfromtxt: KIND.files,
  fromfile: KIND.files,
  fromregex: KIND.files,
  tofile: KIND.files,
  save: KIND.files,
  savez: KIND.files,
  savez_compressed: KIND.files,
  savetxt: KIND.files,
  memmap: KIND.files,
  DataSource: KIND.files,
  to_csv: KIND.files,
  to_excel: KIND.files,
  to_parquet: KIND.files,
  to_pickle: KIND.files,
  to_hdf: KIND.files,
  to_feather: KIND.files,
  to_sql: KIND.files,
  to_stata: KIND.files,
  to_orc: KIND.files,
  to_clipboard: KIND.files,
  empty: KIND.memory,
  empty_like: KIND.memory,
};

/** Date strings numpy and pandas read as the current time (`np.datetime64('now')`). */
const CLOCK_STRINGS = new Set(['now', 'today', 'tomorrow', 'yesterday']);

interface PythonBinding {
  /** The module path, or `module.name` for `from module import name`. */
  readonly target: string;
  readonly kind: Kind;
}

function judgePython(code: string, findings: Findings): void {
  // IPython shell escapes (`!ls`) and magics (`%time`, `%%bash`) start a line.
  for (const line of code.split('\n')) {
    const trimmed = line.trimStart();
    if (trimmed.startsWith('!') || trimmed.startsWith('%')) findings.add(KIND.processes, `shell escape or magic ${trimmed.split(/\s/)[0] ?? ''}`);
  }
  const tokens: Token[] = [];
  const problems: string[] = [];
  lexPython(code, tokens, problems);
  for (const problem of problems) findings.add(KIND.unreadable, problem);

  const consumed = new Set<number>();
  const bindings = new Map<string, PythonBinding>();
  const usedBindings = new Set<string>();
  const modules: string[] = [];
  const isName = (index: number, value?: string): boolean => {
    const token = tokens[index];
    return token?.kind === 'name' && (value === undefined || token.value === value);
  };
  const isPunct = (index: number, value: string): boolean => tokens[index]?.kind === 'punct' && tokens[index]?.value === value;
  /** Reads `a.b.c` at `index`; returns the path and the index after it. */
  const readDotted = (index: number): { path: string; next: number } => {
    const parts: string[] = [];
    let i = index;
    while (isName(i) && !isName(i, 'import')) {
      parts.push(tokens[i]!.value);
      if (!isPunct(i + 1, '.') || !isName(i + 2)) {
        i++;
        break;
      }
      i += 2;
    }
    return { path: parts.join('.'), next: i };
  };
  const consume = (from: number, to: number): void => {
    for (let k = from; k < to; k++) consumed.add(k);
  };
  const noteModule = (path: string, bindAs: string | undefined, target: string): void => {
    modules.push(path);
    const kind = pythonModuleKind(target) ?? pythonModuleKind(path);
    if (kind === undefined) return;
    if (bindAs === undefined) findings.add(kind, target);
    else bindings.set(bindAs, { target, kind });
  };

  for (let i = 0; i < tokens.length; i++) {
    if (isPunct(i - 1, '.')) continue;
    if (isName(i, 'import')) {
      consumed.add(i);
      let j = i + 1;
      for (;;) {
        const { path, next } = readDotted(j);
        if (path === '') break;
        consume(j, next);
        j = next;
        // `import a.b` binds `a` (the kind of `a.b` still counts); `import a.b as c` binds `c` to `a.b`.
        let alias = path.split('.')[0]!;
        let target = alias;
        if (isName(j, 'as') && isName(j + 1)) {
          consume(j, j + 2);
          alias = tokens[j + 1]!.value;
          target = path;
          j += 2;
        }
        noteModule(path, alias, target);
        if (!isPunct(j, ',')) break;
        j++;
      }
      i = j - 1;
    } else if (isName(i, 'from')) {
      let j = i + 1;
      let dots = '';
      while (isPunct(j, '.')) {
        dots += '.';
        j++;
      }
      const { path, next } = readDotted(j);
      if (!isName(next, 'import')) continue;
      consume(i, next + 1);
      const module = dots + path;
      if (dots !== '') findings.add(KIND.unknownModule, `local module ${module}`);
      j = next + 1;
      if (isPunct(j, '(')) j++;
      if (isPunct(j, '*')) {
        noteModule(module, undefined, module);
        continue;
      }
      while (isName(j)) {
        const name = tokens[j]!.value;
        consumed.add(j);
        let alias = name;
        j++;
        if (isName(j, 'as') && isName(j + 1)) {
          consume(j, j + 2);
          alias = tokens[j + 1]!.value;
          j += 2;
        }
        if (dots === '') noteModule(module, alias, `${module}.${name}`);
        if (!isPunct(j, ',')) break;
        j++;
      }
      i = j - 1;
    }
  }

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind === 'string') {
      if (CLOCK_STRINGS.has(token.value.trim().toLowerCase()) && modules.some((m) => /^(numpy|pandas)\b/.test(m))) {
        findings.add(KIND.clock, `'${token.value}' as a date`);
      }
      continue;
    }
    if (token.kind !== 'name' || consumed.has(i)) continue;
    const isMember = isPunct(i - 1, '.');
    const binding = isMember ? undefined : bindings.get(token.value);
    if (binding !== undefined) {
      usedBindings.add(token.value);
      if (isPunct(i + 1, '.') && isName(i + 2)) {
        consumed.add(i + 2);
        findings.add(binding.kind, `${binding.target}.${tokens[i + 2]!.value}`);
      } else {
        findings.add(binding.kind, binding.target);
      }
      continue;
    }
    const any = PY_ANY_NAMES[token.value];
    if (any !== undefined) findings.add(any, token.value);
    // `id=1` as a keyword argument or assignment target does not call the builtin.
    const namesArgument = isPunct(i + 1, '=') && !isPunct(i + 2, '=');
    const builtin = isMember || namesArgument ? undefined : PY_BUILTIN_NAMES[token.value];
    if (builtin !== undefined) findings.add(builtin, token.value);
    if (isMember) {
      const member = PY_MEMBERS[token.value];
      if (member !== undefined) findings.add(member, `.${token.value}`);
      else if (token.value.startsWith('read_')) findings.add(KIND.files, `.${token.value}`);
    }
  }
  // A flagged import that is never used still says what the code intends.
  for (const [alias, binding] of bindings) {
    if (!usedBindings.has(alias)) findings.add(binding.kind, binding.target);
  }
}

// ---------------------------------------------------------------------------------------------------
// JavaScript

/** Keywords after which `/` starts a regular expression, not a division. */
const JS_KEYWORDS_BEFORE_EXPRESSION = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await',
]);

/** Lexes JavaScript from `start`; inside a template `${…}` stops after the matching `}`. Returns the index reached. */
function lexJavaScript(src: string, start: number, insideTemplate: boolean, out: Token[], problems: string[]): number {
  let i = start;
  let depth = 0;
  if (start === 0 && src.startsWith('#!')) while (i < src.length && src[i] !== '\n') i++;
  while (i < src.length) {
    const c = src[i]!;
    if (isSpace(c) || c === '\u2028' || c === '\u2029') {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) {
        problems.push('unterminated comment');
        return src.length;
      }
      i = end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      if (src[j] !== c) {
        problems.push('unterminated string');
        return src.length;
      }
      out.push({ kind: 'string', value: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '`') {
      i = lexTemplate(src, i, out, problems);
    } else if (c === '/' && regexMayStart(out[out.length - 1])) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== '\n' && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      if (src[j] !== '/') {
        problems.push('unterminated regular expression');
        return src.length;
      }
      j++;
      while (j < src.length && isIdentPart(src[j]!)) j++;
      out.push({ kind: 'regex', value: src.slice(i, j) });
      i = j;
    } else if (isIdentStart(c) || c === '$' || c === '\\') {
      i = lexJavaScriptName(src, i, out);
    } else if (isDigit(c) || (c === '.' && isDigit(src[i + 1] ?? ''))) {
      i = readNumber(src, i, out);
    } else {
      if (insideTemplate && c === '{') depth++;
      if (insideTemplate && c === '}') {
        if (depth === 0) return i + 1;
        depth--;
      }
      out.push({ kind: 'punct', value: c });
      i++;
    }
  }
  if (insideTemplate) problems.push('unterminated template expression');
  return i;
}

function lexTemplate(src: string, start: number, out: Token[], problems: string[]): number {
  let i = start + 1;
  let chunkStart = i;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      i += 2;
    } else if (c === '`') {
      out.push({ kind: 'string', value: src.slice(chunkStart, i) });
      return i + 1;
    } else if (c === '$' && src[i + 1] === '{') {
      out.push({ kind: 'string', value: src.slice(chunkStart, i) });
      i = lexJavaScript(src, i + 2, true, out, problems);
      chunkStart = i;
    } else {
      i++;
    }
  }
  problems.push('unterminated template literal');
  return src.length;
}

/** Reads an identifier, decoding `\uXXXX` and `\u{X}` escapes (`\u0065val` is `eval`). */
function lexJavaScriptName(src: string, start: number, out: Token[]): number {
  let i = start;
  let name = '';
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\' && src[i + 1] === 'u') {
      const braced = /^\\u\{([0-9a-fA-F]+)\}/.exec(src.slice(i, i + 12));
      const plain = /^\\u([0-9a-fA-F]{4})/.exec(src.slice(i, i + 6));
      const match = braced ?? plain;
      if (match === null) break;
      name += String.fromCodePoint(Number.parseInt(match[1]!, 16));
      i += match[0].length;
    } else if (isIdentPart(c) || c === '$') {
      name += c;
      i++;
    } else {
      break;
    }
  }
  if (i === start) {
    out.push({ kind: 'punct', value: src[start]! });
    return start + 1;
  }
  out.push({ kind: 'name', value: name });
  return i;
}

function regexMayStart(previous: Token | undefined): boolean {
  if (previous === undefined) return true;
  if (previous.kind === 'name') return JS_KEYWORDS_BEFORE_EXPRESSION.has(previous.value);
  if (previous.kind === 'punct') return previous.value !== ')' && previous.value !== ']' && previous.value !== '}';
  return false;
}

/** Global names, flagged unless they are a property (`x.name`) of something other than `this`. */
const JS_GLOBALS: Readonly<Record<string, Kind>> = {
  Date: KIND.clock,
  performance: KIND.clock,
  Temporal: KIND.clock,
  process: KIND.environment,
  Deno: KIND.environment,
  Bun: KIND.environment,
  Intl: KIND.environment,
  __dirname: KIND.environment,
  __filename: KIND.environment,
  navigator: KIND.environment,
  location: KIND.environment,
  require: KIND.dynamic,
  module: KIND.dynamic,
  importScripts: KIND.dynamic,
  eval: KIND.dynamic,
  Function: KIND.dynamic,
  fetch: KIND.network,
  XMLHttpRequest: KIND.network,
  WebSocket: KIND.network,
  EventSource: KIND.network,
  localStorage: KIND.files,
  sessionStorage: KIND.files,
  indexedDB: KIND.files,
  globalThis: KIND.reflection,
  global: KIND.reflection,
  window: KIND.reflection,
  self: KIND.reflection,
  document: KIND.reflection,
  crypto: KIND.randomness,
  setTimeout: KIND.concurrency,
  setInterval: KIND.concurrency,
  setImmediate: KIND.concurrency,
  Worker: KIND.concurrency,
  SharedArrayBuffer: KIND.concurrency,
  Atomics: KIND.concurrency,
  WeakRef: KIND.gc,
  FinalizationRegistry: KIND.gc,
  prompt: KIND.input,
};

/** Property names flagged on any object (`Math.random`, `Date.now`, `process.env` reached another way). */
const JS_MEMBERS: Readonly<Record<string, Kind>> = {
  random: KIND.randomness,
  getRandomValues: KIND.randomness,
  randomUUID: KIND.randomness,
  randomBytes: KIND.randomness,
  randomInt: KIND.randomness,
  now: KIND.clock,
  hrtime: KIND.clock,
  uptime: KIND.clock,
  env: KIND.environment,
  argv: KIND.environment,
  cwd: KIND.environment,
  pid: KIND.environment,
  memoryUsage: KIND.environment,
  cpuUsage: KIND.environment,
  toLocaleString: KIND.environment,
  toLocaleDateString: KIND.environment,
  toLocaleTimeString: KIND.environment,
  localeCompare: KIND.environment,
  getTimezoneOffset: KIND.environment,
  constructor: KIND.dynamic,
  mainModule: KIND.dynamic,
  binding: KIND.dynamic,
  _linkedBinding: KIND.dynamic,
  dlopen: KIND.dynamic,
  allocUnsafe: KIND.memory,
  allocUnsafeSlow: KIND.memory,
};

/** Node built-in modules (without `node:` and subpaths) and what they give access to. */
const JS_MODULES: Readonly<Record<string, Kind | 'pure'>> = {
  fs: KIND.files,
  path: KIND.environment,
  child_process: KIND.processes,
  cluster: KIND.processes,
  worker_threads: KIND.concurrency,
  timers: KIND.concurrency,
  net: KIND.network,
  http: KIND.network,
  https: KIND.network,
  http2: KIND.network,
  dns: KIND.network,
  dgram: KIND.network,
  tls: KIND.network,
  undici: KIND.network,
  os: KIND.environment,
  process: KIND.environment,
  v8: KIND.environment,
  inspector: KIND.environment,
  readline: KIND.input,
  tty: KIND.input,
  crypto: KIND.randomness,
  perf_hooks: KIND.clock,
  vm: KIND.dynamic,
  module: KIND.dynamic,
  assert: 'pure',
  events: 'pure',
  string_decoder: 'pure',
  querystring: 'pure',
  util: 'pure',
};

function javaScriptModuleKind(specifier: string): Kind | undefined {
  const bare = specifier.replace(/^node:/, '');
  const kind = JS_MODULES[bare.split('/')[0] ?? bare];
  if (kind === undefined) return KIND.unknownModule;
  return kind === 'pure' ? undefined : kind;
}

/** Names that, as strings, point at a way out when used as a computed property name. */
function isDangerousJavaScriptName(value: string): boolean {
  return Object.hasOwn(JS_GLOBALS, value) || Object.hasOwn(JS_MEMBERS, value) || value === '__proto__' || value === 'prototype';
}

function judgeJavaScript(code: string, findings: Findings): void {
  const tokens: Token[] = [];
  const problems: string[] = [];
  lexJavaScript(code, 0, false, tokens, problems);
  for (const problem of problems) findings.add(KIND.unreadable, problem);

  const isPunct = (index: number, value: string): boolean => tokens[index]?.kind === 'punct' && tokens[index]?.value === value;
  const isName = (index: number, value: string): boolean => tokens[index]?.kind === 'name' && tokens[index]?.value === value;
  const noteModule = (specifier: string): void => {
    const kind = javaScriptModuleKind(specifier);
    if (kind !== undefined) findings.add(kind, specifier);
  };
  let computedAccess = false;

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const isMember = isPunct(i - 1, '.');
    if (token.kind === 'name') {
      const name = token.value;
      if (name === 'import' && !isMember) {
        if (isPunct(i + 1, '(')) {
          findings.add(KIND.dynamic, 'import()');
          const specifier = tokens[i + 2];
          if (specifier?.kind === 'string') noteModule(specifier.value);
        } else if (isPunct(i + 1, '.')) {
          findings.add(KIND.environment, 'import.meta');
        } else if (tokens[i + 1]?.kind === 'string') {
          noteModule(tokens[i + 1]!.value);
        }
      } else if (name === 'from' && !isMember && tokens[i + 1]?.kind === 'string') {
        noteModule(tokens[i + 1]!.value);
      } else if (name === 'require' && !isMember && isPunct(i + 1, '(') && tokens[i + 2]?.kind === 'string') {
        findings.add(KIND.dynamic, 'require');
        noteModule(tokens[i + 2]!.value);
      } else if (name === 'this' && isPunct(i + 1, '[')) {
        findings.add(KIND.reflection, 'this[…]');
      } else if (name === 'console' && isPunct(i + 1, '.') && /^time/.test(tokens[i + 2]?.value ?? '')) {
        findings.add(KIND.clock, `console.${tokens[i + 2]!.value}`);
      }
      const global = JS_GLOBALS[name];
      if (global !== undefined && (!isMember || isName(i - 2, 'this'))) findings.add(global, name);
      const member = JS_MEMBERS[name];
      if (member !== undefined) findings.add(member, isMember ? `.${name}` : name);
      continue;
    }
    if (token.kind !== 'punct' || token.value !== '[') continue;
    const previous = tokens[i - 1];
    const indexes =
      previous !== undefined &&
      ((previous.kind === 'name' && !JS_KEYWORDS_BEFORE_EXPRESSION.has(previous.value)) ||
        (previous.kind === 'punct' && (previous.value === ')' || previous.value === ']')) ||
        previous.kind === 'string' ||
        (previous.kind === 'punct' && previous.value === '.' && isPunct(i - 2, '?')));
    if (!indexes) continue;
    let depth = 1;
    let j = i + 1;
    for (; j < tokens.length && depth > 0; j++) {
      if (isPunct(j, '[')) depth++;
      else if (isPunct(j, ']')) depth--;
    }
    const inner = tokens.slice(i + 1, j - 1);
    const only = inner.length === 1 ? inner[0] : undefined;
    if (only?.kind === 'number') continue;
    computedAccess = true;
    const strings = inner.filter((t) => t.kind === 'string');
    const dangerous = strings.find((t) => isDangerousJavaScriptName(t.value));
    if (dangerous !== undefined) findings.add(KIND.reflection, `["${dangerous.value}"]`);
    else if (strings.length > 0 && only?.kind !== 'string') findings.add(KIND.reflection, 'a property name built from strings');
    if (isPunct(j, '(') && only?.kind !== 'string') findings.add(KIND.reflection, 'a call through a computed property name');
  }
  if (computedAccess) {
    const named = tokens.find((t) => t.kind === 'string' && isDangerousJavaScriptName(t.value));
    if (named !== undefined) findings.add(KIND.reflection, `computed access with the name "${named.value}" in a string`);
  }
}
