export {
  ROUTING_POLICIES,
  createRouter,
  compileRouterOptions,
  type RoutingPolicy,
  type Router,
  type RouterOptions,
  type RouterConfig,
  type RouteTarget,
  type RouteTask,
  type RouteOutcome,
  type RouteTargetSnapshot,
} from './routing.js';
export {
  TOPOLOGIES,
  planTopology,
  type Topology,
  type AgentRole,
  type AgentPlan,
  type TopologyPlan,
  type PlanOptions,
  type PlannedStrategy,
} from './plan.js';
