export { LatencyWindow, type LatencyWindowSummary } from './latency.js';
export { ExecPrometheus } from './prometheus.js';
