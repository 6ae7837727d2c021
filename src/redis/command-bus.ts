/**
 * Commands for a running turn across instances over Redis pub/sub: the instance that runs a turn
 * serves its session's channel, any instance sends to it and gets the answer or the same error
 * as in one process (`NOTHING_PENDING`, `SESSION_NOT_RUNNING`, …). A {@link CommandBus}: hand it
 * to every instance's `SessionManager` as `commandBus` (the contract is in `src/command-bus.ts`).
 *
 * - A request is published on `<prefix>commands:<session>` with an id and the sender's reply
 *   channel (`<prefix>replies:<instance>`, one subscription per bus); the server publishes the
 *   result there.
 * - `PUBLISH` answers how many subscribers got the request: none means no instance runs a turn of
 *   that session, and {@link RedisCommandBus.send} rejects with `SESSION_NOT_RUNNING` at once.
 * - An answer that does not come within `timeoutMs` (the serving instance died mid-request) is
 *   `TIMEOUT`; an aborted signal rejects with its reason.
 * - Errors cross as `{ code, message }` and are rebuilt as `AgentSessionsError`s with that code;
 *   anything else a handler throws arrives as `RUNTIME_FAILED`.
 */
import type { Command, CommandBus } from '../command-bus.js';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import { newId } from '../internal/ids.js';

/** The publishing side of a Redis connection (node-redis v5 has it). */
export interface RedisPublisher {
  publish(channel: string, message: string): Promise<number>;
}

/** A connection in subscriber mode (node-redis v5 `client.duplicate()`, connected). */
export interface RedisSubscriber {
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
}

/** Options of {@link RedisCommandBus}. */
export interface RedisCommandBusOptions {
  /** For publishing requests and replies (may be shared). */
  publisher: RedisPublisher;
  /** A connection of its own for subscriptions (a subscribed connection can do nothing else). */
  subscriber: RedisSubscriber;
  /** Prefix of every channel. @default 'agent-sessions:' */
  prefix?: string;
  /** How long {@link RedisCommandBus.send} waits for the answer. @default 10000 */
  timeoutMs?: number;
}

type Reply =
  | { id: string; ok: true; value: unknown }
  | { id: string; ok: false; code: string; message: string };

const CODES = new Set<string>(Object.values(ErrorCode));

/** Sends commands to the instance running a session's turn, and serves them there. */
export class RedisCommandBus implements CommandBus {
  readonly #publisher: RedisPublisher;
  readonly #subscriber: RedisSubscriber;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #replyChannel: string;
  readonly #waiting = new Map<string, (reply: Reply) => void>();
  #listening: Promise<unknown> | undefined;

  constructor(options: RedisCommandBusOptions) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#prefix = options.prefix ?? 'agent-sessions:';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#replyChannel = `${this.#prefix}replies:${newId('instance')}`;
  }

  #channel(sessionId: string): string {
    return `${this.#prefix}commands:${sessionId}`;
  }

  /**
   * Serves the session's commands with `handler` (on the instance that runs its turn) until the
   * returned function is called.
   */
  async serve(
    sessionId: string,
    handler: (command: Command) => Promise<unknown>,
  ): Promise<() => Promise<void>> {
    const channel = this.#channel(sessionId);
    await this.#subscriber.subscribe(channel, (text) => {
      let request: { id: string; replyTo: string; command: Command };
      try {
        request = JSON.parse(text) as typeof request;
      } catch {
        return;
      }
      void (async () => {
        let reply: Reply;
        try {
          reply = { id: request.id, ok: true, value: (await handler(request.command)) ?? null };
        } catch (error) {
          reply = AgentSessionsError.isInstance(error)
            ? { id: request.id, ok: false, code: error.code, message: error.message }
            : {
                id: request.id,
                ok: false,
                code: ErrorCode.RUNTIME_FAILED,
                message: error instanceof Error ? error.message : String(error),
              };
        }
        await this.#publisher.publish(request.replyTo, JSON.stringify(reply)).catch(() => {});
      })();
    });
    return async () => {
      await this.#subscriber.unsubscribe(channel);
    };
  }

  /**
   * Sends a command to the instance running the session's turn and resolves to its answer.
   * `SESSION_NOT_RUNNING` when none serves the session; the handler's error code otherwise;
   * `TIMEOUT` after `timeoutMs`; `STORE_UNAVAILABLE` when Redis fails.
   */
  async send(sessionId: string, command: Command, options: { signal?: AbortSignal } = {}): Promise<unknown> {
    options.signal?.throwIfAborted();
    try {
      this.#listening ??= this.#subscriber.subscribe(this.#replyChannel, (text) => {
        try {
          const reply = JSON.parse(text) as Reply;
          this.#waiting.get(reply.id)?.(reply);
        } catch {
          // not ours
        }
      });
      await this.#listening;
    } catch (error) {
      this.#listening = undefined;
      throw unavailable(error);
    }
    options.signal?.throwIfAborted();
    const id = newId('command');
    const answered = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        settle();
        reject(
          new AgentSessionsError(
            ErrorCode.TIMEOUT,
            `no answer to ${command.kind} for session ${sessionId} within ${this.#timeoutMs} ms`,
          ),
        );
      }, this.#timeoutMs);
      const onAbort = () => {
        settle();
        reject(options.signal?.reason);
      };
      const settle = () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        options.signal?.removeEventListener('abort', onAbort);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.set(id, (reply) => {
        settle();
        resolve(reply);
      });
    });
    let receivers: number;
    try {
      receivers = await this.#publisher.publish(
        this.#channel(sessionId),
        JSON.stringify({ id, replyTo: this.#replyChannel, command }),
      );
    } catch (error) {
      this.#waiting.get(id)?.({ id, ok: false, code: ErrorCode.STORE_UNAVAILABLE, message: String(error) });
      throw unavailable(error);
    }
    if (receivers === 0) {
      this.#waiting.get(id)?.({ id, ok: true, value: null });
      await answered;
      throw new AgentSessionsError(
        ErrorCode.SESSION_NOT_RUNNING,
        `no instance runs a turn of session ${sessionId}`,
      );
    }
    const reply = await answered;
    if (reply.ok) return reply.value;
    const code = CODES.has(reply.code) ? (reply.code as ErrorCode) : ErrorCode.RUNTIME_FAILED;
    throw new AgentSessionsError(code, reply.message);
  }

  /** Stops listening for answers (pending sends end with `TIMEOUT`). */
  async close(): Promise<void> {
    const listening = this.#listening !== undefined;
    this.#listening = undefined;
    if (listening) await this.#subscriber.unsubscribe(this.#replyChannel).catch(() => {});
  }
}

function unavailable(error: unknown): AgentSessionsError {
  if (AgentSessionsError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(ErrorCode.STORE_UNAVAILABLE, `the redis command bus failed: ${detail}`, {
    cause: error,
  });
}
