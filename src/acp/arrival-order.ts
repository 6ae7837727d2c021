/**
 * `session/cancel` in arrival order.
 *
 * The SDK dispatches each message through a chain of async handlers, so a `session/cancel` that
 * arrives right after a `session/prompt` can reach its handler first (kodelet's ACP manager loses
 * such cancels). Here every incoming message is seen, synchronously and in wire order, before the
 * SDK dispatches it: a prompt takes a {@link PromptTicket} at once, and a cancel aborts the tickets
 * of every prompt of that session that arrived before it, whether or not its handler has started.
 * A prompt whose ticket is aborted ends `cancelled` (or never starts).
 */
import type { AnyMessage, Stream } from '@agentclientprotocol/sdk';

type JsonRpcId = string | number | null;

/** One prompt request, from its arrival until its response is sent. */
export interface PromptTicket {
  readonly requestId: JsonRpcId;
  readonly sessionId: string;
  /** Aborted by a `session/cancel` that arrived after the prompt, `$/cancel_request`, or the connection closing. */
  readonly signal: AbortSignal;
  abort(reason: unknown): void;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function sessionIdOf(params: unknown): string | undefined {
  return isRecord(params) && typeof params.sessionId === 'string' ? params.sessionId : undefined;
}

/** Tickets of the prompts of one connection, keyed by request id. */
export class ArrivalOrder {
  readonly #tickets = new Map<JsonRpcId, PromptTicket>();

  /** The ticket of a prompt request, made now if its arrival was not observed (it then arrived just now). */
  claim(requestId: JsonRpcId, sessionId: string): PromptTicket {
    let ticket = this.#tickets.get(requestId);
    if (!ticket || ticket.sessionId !== sessionId) {
      ticket = this.#issue(requestId, sessionId);
    }
    return ticket;
  }

  /** Aborts every prompt of the session that has arrived so far. */
  cancelSession(sessionId: string, reason: unknown): void {
    for (const ticket of this.#tickets.values()) {
      if (ticket.sessionId === sessionId) ticket.abort(reason);
    }
  }

  /** Aborts every prompt of the connection. */
  cancelAll(reason: unknown): void {
    for (const ticket of this.#tickets.values()) ticket.abort(reason);
  }

  /** Forgets a prompt whose response went out. */
  release(requestId: JsonRpcId): void {
    this.#tickets.delete(requestId);
  }

  /** Prompts waiting for their response. */
  get size(): number {
    return this.#tickets.size;
  }

  /**
   * The stream the SDK should use: incoming messages are observed in wire order before the SDK
   * sees them, and a prompt's ticket is released when its response goes out (also when the SDK
   * answered it without our handler, e.g. invalid params).
   */
  observe(stream: Stream): Stream {
    const incoming = new TransformStream<AnyMessage, AnyMessage>({
      transform: (message, controller) => {
        this.#arrived(message);
        controller.enqueue(message);
      },
    });
    void stream.readable.pipeTo(incoming.writable).catch(() => {
      // The connection sees the end of its readable side and closes; nothing to add here.
    });
    const writer = stream.writable.getWriter();
    const writable = new WritableStream<AnyMessage>({
      write: async (message) => {
        await writer.write(message);
        if (isRecord(message) && !('method' in message) && 'id' in message) {
          this.release(message.id as JsonRpcId);
        }
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    });
    return { readable: incoming.readable, writable };
  }

  #arrived(message: unknown): void {
    if (!isRecord(message) || typeof message.method !== 'string') return;
    const sessionId = sessionIdOf(message.params);
    if (sessionId === undefined) return;
    if (message.method === 'session/prompt' && 'id' in message) {
      this.#issue(message.id as JsonRpcId, sessionId);
    } else if (message.method === 'session/cancel' && !('id' in message)) {
      this.cancelSession(sessionId, new Error(`session/cancel for ${sessionId}`));
    }
  }

  #issue(requestId: JsonRpcId, sessionId: string): PromptTicket {
    const controller = new AbortController();
    const ticket: PromptTicket = {
      requestId,
      sessionId,
      signal: controller.signal,
      abort: (reason) => {
        if (!controller.signal.aborted) controller.abort(reason);
      },
    };
    this.#tickets.set(requestId, ticket);
    return ticket;
  }
}
