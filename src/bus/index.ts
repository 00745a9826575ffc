// The bus's public face: what other folders use, and the types and errors of the seams they use.
export { swarmTopics, validateSegment, type SwarmTopics } from './topics.js';
export {
  defineMessage,
  MessageRegistry,
  HeartbeatMessage,
  ControlMessage,
  CheckpointMessage,
  type Envelope,
  type MessageDraft,
  type MessageDefinition,
  type PayloadOf,
} from './envelope.js';
export type {
  Bus,
  QoS,
  PublishOptions,
  SubscribeOptions,
  RequestOptions,
  ServeOptions,
  Delivery,
  MessageHandler,
  RequestHandler,
  Subscription,
  BusStats,
  TypeStats,
} from './bus.js';
export { MqttBus, connectBus, type MqttBusOptions } from './mqttbus.js';
export { createMemoryBroker, createMemoryBus, type MemoryBroker, type MemoryBus, type MemoryBrokerOptions, type MemoryBusOptions } from './memorybus.js';
export { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions, type BrokerCredentials } from './broker.js';
export type { AgentIdentity } from './access.js';
export { agentConnectionId } from './access.js';
export {
  BusError,
  BusTimeoutError,
  BusMessageError,
  BusClosedError,
  BusAuthError,
  BusConnectionError,
  BusRequestAbortedError,
  BusRemoteError,
  isBusError,
  isBusTimeoutError,
  isBusMessageError,
  isBusClosedError,
  isBusAuthError,
  isBusConnectionError,
  isBusRequestAbortedError,
  isBusRemoteError,
  type BusMessageErrorReason,
  type BusAuthOperation,
} from './errors.js';
