/**
 * The command bus: how a command for a running turn (cancel, steer, follow-up, answer a
 * confirmation or an elicitation) reaches the instance that runs it, from any instance.
 *
 * `SessionManagerOptions.commandBus` takes one. The manager that holds a session's busy lease for
 * a turn serves the session's commands for as long as it holds it; a manager asked for a command
 * about a session it does not run sends it over the bus and returns the answer, or throws the same
 * error as the serving instance did. When no instance serves the session, it handles the command
 * itself, as if it were alone (a cancel resolves `false`, a steer is `SESSION_NOT_RUNNING`, a
 * follow-up starts a turn, an answer goes to the persisted request).
 *
 * Implementations: `RedisCommandBus` (`agent-sessions/redis`) between processes, and
 * {@link InProcessCommandBus} between managers of one process (tests, or several managers on one
 * store in one process). The contract:
 * - {@link CommandBus.serve} MUST deliver each command sent for the session to `handler` while it
 *   serves, and send back the handler's result (JSON) or its error's `code` and `message`;
 * - {@link CommandBus.send} MUST reject with `SESSION_NOT_RUNNING` when no instance serves the
 *   session, with an `AgentSessionsError` of the handler's code when the handler threw one
 *   (`RUNTIME_FAILED` for anything else), with `TIMEOUT` when no answer comes, and with
 *   `signal.reason` when the signal aborts.
 */
import { AgentSessionsError, ErrorCode } from './errors.js';

/** A command for a session's running turn; `value` is JSON. */
export interface Command {
  /** `'cancel'`, `'steer'`, `'follow-up'`, `'resume'` or `'elicitation'` (the manager's kinds). */
  kind: string;
  /** The command's arguments (JSON). */
  value?: unknown;
}

/** Carries commands to the instance running a session's turn. See the module documentation. */
export interface CommandBus {
  /** Serves the session's commands with `handler` until the returned function is called. */
  serve(sessionId: string, handler: (command: Command) => Promise<unknown>): Promise<() => Promise<void>>;
  /** Sends a command to the instance serving the session and resolves to the handler's result. */
  send(sessionId: string, command: Command, options?: { signal?: AbortSignal }): Promise<unknown>;
}

const CODES = new Set<string>(Object.values(ErrorCode));

/**
 * A {@link CommandBus} between the managers of one process: hand the same instance to each.
 * Commands and answers are copied as JSON, like over a network, so a test on it sees what a remote
 * instance would.
 */
export class InProcessCommandBus implements CommandBus {
  readonly #handlers = new Map<string, (command: Command) => Promise<unknown>>();

  serve(sessionId: string, handler: (command: Command) => Promise<unknown>): Promise<() => Promise<void>> {
    this.#handlers.set(sessionId, handler);
    return Promise.resolve(() => {
      if (this.#handlers.get(sessionId) === handler) this.#handlers.delete(sessionId);
      return Promise.resolve();
    });
  }

  async send(sessionId: string, command: Command, options: { signal?: AbortSignal } = {}): Promise<unknown> {
    options.signal?.throwIfAborted();
    const handler = this.#handlers.get(sessionId);
    if (handler === undefined) {
      throw new AgentSessionsError(
        ErrorCode.SESSION_NOT_RUNNING,
        `no instance runs a turn of session ${sessionId}`,
      );
    }
    try {
      const result = await handler(JSON.parse(JSON.stringify(command)) as Command);
      return result === undefined ? null : (JSON.parse(JSON.stringify(result)) as unknown);
    } catch (error) {
      if (AgentSessionsError.isInstance(error) && CODES.has(error.code)) {
        throw new AgentSessionsError(error.code, error.message);
      }
      throw new AgentSessionsError(
        ErrorCode.RUNTIME_FAILED,
        error instanceof Error ? error.message : String(error),
      );
    }
  }
}
