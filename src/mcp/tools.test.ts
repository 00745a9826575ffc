import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { describe, expect, it } from 'vitest';
import { closedPort } from '../../test/fixtures/servers.js';
import { ControlPlaneClient } from '../client/index.js';
import { CONTROL_PLANE_TOOLS, registerControlPlaneTools } from './tools.js';

describe('registerControlPlaneTools', () => {
  it('declares its tools, and answers a tool error saying how to start serve when none answers', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const server = new McpServer({ name: 'test', version: '1.0.0' });
    registerControlPlaneTools(server, new ControlPlaneClient({ url }), { baseDir: '/specs' });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual([...CONTROL_PLANE_TOOLS]);
      expect(tools.find((tool) => tool.name === 'deploy_swarm')?.inputSchema.properties).toMatchObject({ env: { enum: ['dev', 'staging', 'prod'] }, baseDir: { description: expect.stringContaining('default: /specs') as unknown } });
      expect(tools.find((tool) => tool.name === 'deployment_health')?.description).toMatch(/its latest health check \(healthy, degraded, unhealthy or unreachable, with the reasons/);
      const result = await client.callTool({ name: 'list_deployments', arguments: {} });
      expect(result.isError).toBe(true);
      expect((result.content as Array<{ text: string }>)[0]?.text).toMatch(new RegExp(`^list_deployments failed: no tradeswarm server answers at ${url} \\(.*\\); start one with \`tradeswarm serve\``));
      const invalid = await client.callTool({ name: 'deployment_orders', arguments: { deployment: 'x', fromStep: -1 } });
      expect(invalid.isError).toBe(true);
      expect((invalid.content as Array<{ text: string }>)[0]?.text).toMatch(/fromStep/);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
