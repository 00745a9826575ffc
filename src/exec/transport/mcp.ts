import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { errorMessage } from '../../core/index.js';
import { EXEC_LANGUAGES, type ExecLanguage } from '../executor.js';
import type { ExecResult, ExecService } from '../service.js';

/** Options of {@link createExecMcpServer}. */
export interface ExecMcpOptions {
  /** The user the fair queue charges this client's executions to. @default 'mcp' */
  user?: string;
  /** @default the package version */
  version?: string;
}

/** The text an assistant reads: what the program printed, its value, its error. */
export function describeResult(result: ExecResult): string {
  const parts: string[] = [];
  if (result.stdout !== '') parts.push(`stdout:\n${result.stdout}`);
  if (result.stderr !== '') parts.push(`stderr:\n${result.stderr}`);
  const main = result.results.find((item) => item.isMainResult === true);
  if (main && typeof main.text === 'string') parts.push(`result: ${main.text}`);
  if (result.error) parts.push(`error: ${result.error.name}: ${result.error.value}${result.error.traceback ? `\n${result.error.traceback}` : ''}`);
  if (result.truncated) parts.push('(output was cut at the size limit)');
  if (parts.length === 0) parts.push('(no output)');
  parts.push(`[${result.language}, ${result.durationMs} ms in sandbox ${result.sandboxId}${result.fromCache ? ', from cache' : ''}]`);
  return parts.join('\n\n');
}

/**
 * An MCP server exposing the execution service to AI assistants as one tool, `run_code`: it runs
 * Python or JavaScript in a clean, isolated sandbox and answers with the output, the value of the
 * last expression and any error (text for the model, and the full result as structured content).
 * Busy and invalid-input errors come back as tool errors saying what to do.
 */
export function createExecMcpServer(service: ExecService, options: ExecMcpOptions = {}): McpServer {
  const server = new McpServer({ name: 'tradeswarm-exec', version: options.version ?? '0.1.0' });
  const user = options.user ?? 'mcp';
  server.registerTool(
    'run_code',
    {
      title: 'Run code in a sandbox',
      description:
        'Runs Python or JavaScript in a fresh, isolated sandbox (no state is kept between calls) and returns stdout, stderr, ' +
        'the value of the last expression and any error with its traceback. Use it to compute, test code or check data.',
      inputSchema: {
        code: z.string().describe('The program to run.'),
        language: z.enum(EXEC_LANGUAGES as [ExecLanguage, ...ExecLanguage[]]).default('python').describe('python or javascript'),
        timeoutMs: z.number().int().min(1).optional().describe('Time limit in ms (default 30000).'),
        env: z.record(z.string(), z.string()).optional().describe('Environment variables for the program.'),
      },
    },
    async ({ code, language, timeoutMs, env }): Promise<CallToolResult> => {
      try {
        const result = await service.exec({ code, language, user, ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(env === undefined ? {} : { env }) });
        return {
          content: [{ type: 'text', text: describeResult(result) }],
          structuredContent: { ...result },
          isError: result.error !== undefined,
        };
      } catch (error) {
        return { content: [{ type: 'text', text: `the code did not run: ${errorMessage(error)}` }], isError: true };
      }
    },
  );
  return server;
}
