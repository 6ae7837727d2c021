// agent-sessions/redis: coordination of several instances through Redis. The client (`redis`,
// node-redis v5) is an optional peer dependency of this entry only; the main entry never loads it.

export type { Command, CommandBus } from '../command-bus.js';
export {
  RedisCommandBus,
  type RedisCommandBusOptions,
  type RedisPublisher,
  type RedisSubscriber,
} from './command-bus.js';
export {
  type RedisCommandClient,
  RedisEventStream,
  type RedisEventStreamOptions,
  type ReplayResult,
} from './event-stream.js';
export {
  LeaseLostError,
  type RedisLease,
  RedisLeaseLock,
  type RedisLeaseLockOptions,
  type RedisScripting,
} from './lease-lock.js';
