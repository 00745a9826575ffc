// The control plane's HTTP API as a contract: the zod schemas of what its routes take and answer, and
// the OpenAPI document made from them. `tradeswarm serve` (src/controlplane/) validates with them and
// answers them; the clients (src/client/, src/mcp/) are typed by them. It imports neither side.
export {
  ENVIRONMENTS,
  SPEC_LIMIT_BYTES,
  deployBodySchema,
  ordersQuerySchema,
  eventsQuerySchema,
  logsQuerySchema,
  barsBodySchema,
  publishedBarsSchema,
  scaleBodySchema,
  stopQuerySchema,
  streamQuerySchema,
  deploymentViewSchema,
  deploymentStatusSchema,
  eventRecordSchema,
  agentLogLineSchema,
  orderRecordSchema,
  fillRecordSchema,
  errorBodySchema,
  healthSchema,
  type ErrorBodyAnswer,
} from './schemas.js';
export { openApiDocument, responseSchemaOf, API_ROUTES, OPENAPI_PATH, type ApiRoute } from './openapi.js';
