import { z } from 'zod';
import { InvalidInputError } from '../../core/index.js';

const MiB = 1024 * 1024;

const templateSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit'),
  files: z
    .record(
      z.string().refine((path) => !path.startsWith('/') && !path.split('/').includes('..'), 'file paths are relative to /home/user and may not contain ..'),
      z.union([z.string(), z.instanceof(Uint8Array)]),
    )
    .default({}),
  envs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env var names are letters, digits and underscores'), z.string()).default({}),
  cpuCount: z.number().int().min(1).max(64).default(2),
  memoryMB: z.number().int().min(32).max(65536).default(1024),
  diskMB: z.number().int().min(16).max(1_048_576).default(1024),
  maxProcesses: z.number().int().min(8).max(32768).default(256),
  maxOpenFiles: z.number().int().min(64).max(1_048_576).default(4096),
  startCommand: z.string().min(1).optional(),
});

/** A local template as a user registers it; every field but `name` has a default. */
export type TemplateOptions = z.input<typeof templateSchema>;

/** A compiled template. */
export interface Template {
  readonly name: string;
  /** Files written into /home/user of every new sandbox (relative paths). */
  readonly files: Readonly<Record<string, string | Uint8Array>>;
  /** Env vars every process of the sandbox sees (sandbox and command envs override them). */
  readonly envs: Readonly<Record<string, string>>;
  /**
   * The cores its sandboxes get (their CPU quota, and what info and metrics report): what the options
   * asked for, or the host's cores when it has fewer (a quota above them would limit nothing).
   */
  readonly cpuCount: number;
  /** The cores the options asked for; above `cpuCount` when the host has fewer. */
  readonly requestedCpuCount: number;
  readonly memoryMB: number;
  /**
   * Size of the sandbox's disk, which holds everything it writes, anywhere (an ext4 image: about 2%
   * goes to the filesystem itself); also every process's RLIMIT_FSIZE.
   */
  readonly diskMB: number;
  readonly maxProcesses: number;
  readonly maxOpenFiles: number;
  /** Started in the background as `user` in /home/user when a sandbox is created. */
  readonly startCommand?: string;
  readonly memoryBytes: number;
  readonly diskBytes: number;
}

/**
 * Validates template options into a complete template, its cores no more than `hostCpus`.
 * @throws InvalidInputError naming the field.
 */
export function compileTemplate(options: TemplateOptions, hostCpus = Number.POSITIVE_INFINITY): Template {
  const parsed = templateSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // A bad record key (file path, env var name) carries its own message one level down.
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    throw new InvalidInputError(`template.${issue.path.join('.') || 'name'}`, message);
  }
  const template = parsed.data;
  return Object.freeze({ ...template, cpuCount: Math.min(template.cpuCount, hostCpus), requestedCpuCount: template.cpuCount, memoryBytes: template.memoryMB * MiB, diskBytes: template.diskMB * MiB });
}

/** The templates every local cloud has. */
export const BUILTIN_TEMPLATES: readonly TemplateOptions[] = [
  { name: 'base' },
  { name: 'code-interpreter-v1' },
  // E2B's echo server template, which its own tests start as a sidecar: go-httpbin's answers on port 8080.
  { name: 'httpbin', startCommand: 'exec python3 /opt/tradeswarm/guest/httpbin.py 8080' },
];

/** Templates by name (and by the E2B-style alias `name:tag`, ignoring the tag). */
export class TemplateRegistry {
  private readonly templates = new Map<string, Template>();

  /** @param hostCpus the host's cores: a template asking for more gets these (see {@link Template.cpuCount}). */
  constructor(
    templates: readonly TemplateOptions[] = BUILTIN_TEMPLATES,
    private readonly hostCpus = Number.POSITIVE_INFINITY,
  ) {
    for (const template of templates) this.register(template);
  }

  /** Adds or replaces a template. @throws InvalidInputError when the options are invalid. */
  register(options: TemplateOptions): Template {
    const template = compileTemplate(options, this.hostCpus);
    this.templates.set(template.name, template);
    return template;
  }

  /** @returns the template, or undefined when none has that name. */
  find(nameOrAlias: string): Template | undefined {
    return this.templates.get(nameOrAlias.split(':')[0]!);
  }

  /** The templates asking for more cores than the host has (see {@link Template.cpuCount}). */
  clamped(): Template[] {
    return [...this.templates.values()].filter((template) => template.requestedCpuCount > template.cpuCount);
  }

  names(): string[] {
    return [...this.templates.keys()].sort();
  }
}
