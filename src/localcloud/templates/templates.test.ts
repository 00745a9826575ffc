import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../core/index.js';
import { TemplateRegistry, compileTemplate, loadTemplateFile } from './index.js';

const folders: string[] = [];
function folder(): string {
  const created = mkdtempSync(join(tmpdir(), 'tradeswarm-template-'));
  folders.push(created);
  return created;
}
afterEach(() => {
  for (const created of folders.splice(0)) rmSync(created, { recursive: true, force: true });
});

describe('templates', () => {
  it('fills defaults and computes byte limits', () => {
    const template = compileTemplate({ name: 'agent', memoryMB: 256 });
    expect(template).toMatchObject({ name: 'agent', cpuCount: 2, memoryMB: 256, memoryBytes: 256 * 1024 * 1024, diskMB: 1024, maxProcesses: 256, maxOpenFiles: 4096, files: {}, envs: {} });
  });

  it('gives a template that asks for more cores than the host has the host\'s, and keeps what it asked for', () => {
    expect(compileTemplate({ name: 't3', cpuCount: 4 }, 2)).toMatchObject({ cpuCount: 2, requestedCpuCount: 4 });
    expect(compileTemplate({ name: 't1', cpuCount: 1 }, 2)).toMatchObject({ cpuCount: 1, requestedCpuCount: 1 });
    const registry = new TemplateRegistry([{ name: 'small', cpuCount: 1 }, { name: 'large', cpuCount: 8 }], 2);
    expect(registry.clamped().map((template) => template.name)).toEqual(['large']);
  });

  it.each([
    [{ name: 'Bad Name' }, /template\.name: use 1-63 lowercase letters/],
    [{ name: 'ok', memoryMB: 8 }, /template\.memoryMB: .*32/],
    [{ name: 'ok', files: { '../escape': 'x' } }, /template\.files\.\.\.\/escape: file paths are relative/],
    [{ name: 'ok', envs: { 'BAD-NAME': 'x' } }, /template\.envs\.BAD-NAME: env var names/],
  ])('refuses %j naming the field', (options, message) => {
    expect(() => compileTemplate(options as never)).toThrow(InvalidInputError);
    expect(() => compileTemplate(options as never)).toThrow(message);
  });

  it('finds templates by name or name:tag and lists them', () => {
    const registry = new TemplateRegistry();
    registry.register({ name: 'agent' });
    expect(registry.find('agent:v2')?.name).toBe('agent');
    expect(registry.find('missing')).toBeUndefined();
    expect(registry.names()).toEqual(['agent', 'base', 'code-interpreter-v1', 'httpbin']);
  });

  it('loads a YAML template with files copied from a folder', () => {
    const root = folder();
    mkdirSync(join(root, 'payload', 'conf'), { recursive: true });
    writeFileSync(join(root, 'payload', 'conf', 'settings.json'), '{"risk":0.02}');
    writeFileSync(join(root, 'agent.yaml'), 'name: momentum-agent\nmemoryMB: 256\nenvs:\n  ROLE: momentum\nfilesFrom: payload\nfiles:\n  README.txt: inline\nstartCommand: echo up\n');
    const options = loadTemplateFile(join(root, 'agent.yaml'));
    const template = compileTemplate(options);
    expect(template.name).toBe('momentum-agent');
    expect(template.envs).toEqual({ ROLE: 'momentum' });
    expect(Buffer.from(template.files['conf/settings.json']!).toString()).toBe('{"risk":0.02}');
    expect(template.files['README.txt']).toBe('inline');
    expect(template.startCommand).toBe('echo up');
  });

  it('names the file and the problem when a template file is wrong', () => {
    const root = folder();
    writeFileSync(join(root, 'list.yaml'), '- not\n- a mapping\n');
    expect(() => loadTemplateFile(join(root, 'list.yaml'))).toThrow(/list\.yaml: must be a mapping/);
    writeFileSync(join(root, 'broken.yaml'), 'name: [unclosed\n');
    expect(() => loadTemplateFile(join(root, 'broken.yaml'))).toThrow(/broken\.yaml: could not be read as a template/);
    writeFileSync(join(root, 'nofolder.yaml'), 'name: x\nfilesFrom: missing\n');
    expect(() => loadTemplateFile(join(root, 'nofolder.yaml'))).toThrow(/filesFrom: .*missing is not a folder/);
    writeFileSync(join(root, 'cores.yaml'), 'name: big\ncpuCount: 0\n');
    expect(() => loadTemplateFile(join(root, 'cores.yaml'))).toThrow(new InvalidInputError(`${join(root, 'cores.yaml')}: template.cpuCount`, 'Too small: expected number to be >=1'));
  });
});
