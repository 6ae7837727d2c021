/**
 * `AgentSessionsClient`: a {@link SessionManager}'s methods over HTTP, for browsers and Node (only
 * `fetch` and web streams; no `node:*` import). Errors come back as the library's own
 * (`AgentSessionsError` with the server's code), events as the same `SessionEvent`s, and turns and
 * event streams reconnect by themselves after a dropped connection, from the last seq received.
 */
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { SessionEvent } from '../events.js';
import type {
  AvailableModels,
  MessageInput,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  SessionSnapshot,
  SessionTemplate,
  TurnResult,
  TurnStream,
} from '../manager/types.js';
import type {
  ExportBundle,
  Message,
  Permissions,
  SafetyPolicy,
  Session,
  SessionSummary,
  SummaryItem,
} from '../schemas.js';
import type { ListOptions, Page } from '../store.js';
import { errorFromWire, HttpError } from './errors.js';
import { readSse, type SseMessage } from './sse.js';

/** How event streams reconnect. */
export interface ReconnectOptions {
  /** The first delay after a dropped connection (> 0, else a TypeError). @default 250 */
  initialDelayMs?: number;
  /** The delay doubles per failed attempt up to this (> 0). @default 5000 */
  maxDelayMs?: number;
  /** A connection silent this long (no event, no `: ping`) is taken as dropped. 0 = never. @default 45000 */
  idleTimeoutMs?: number;
}

/** Options of {@link AgentSessionsClient}. */
export interface AgentSessionsClientOptions {
  /** Where the handler's API is, e.g. `http://127.0.0.1:3000/api` (in a browser also `/api`). */
  baseUrl: string;
  /** A bearer token, or a function returning the current one (called per request). */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** Reconnection of event streams. */
  reconnect?: ReconnectOptions;
}

/** A change of an event stream's connection, for status displays. */
export type ConnectionChange =
  | { state: 'connected' }
  | { state: 'reconnecting'; attempt: number; delayMs: number; error: unknown };

/** Options of {@link AgentSessionsClient.streamEvents}. */
export interface StreamEventsOptions {
  /** Deliver events after this seq (the whole kept log when omitted). */
  since?: number;
  /** Stops the stream: the pending `next()` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Told when the connection drops and comes back. */
  onConnectionChange?: (change: ConnectionChange) => void;
}

/** Options of {@link AgentSessionsClient.runSession}. */
export interface RemoteRunOptions {
  /**
   * Aborting cancels the turn (and rejects `runSession` while it is still being admitted). A
   * cancelled turn is not reconnected to: if its connection is down, `done` resolves `cancelled`.
   */
  signal?: AbortSignal;
  /** What breaking out of the stream does: cancel the turn, or let it run on. @default 'cancel' */
  onDetach?: 'cancel' | 'continue';
  /** Told when the turn's connection drops and comes back. */
  onConnectionChange?: (change: ConnectionChange) => void;
}

const TURN_ID_HEADER = 'agent-sessions-turn-id';

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Errors worth reconnecting after: the network, the server restarting or overloaded. */
function isRetriable(error: unknown): boolean {
  if (HttpError.isInstance(error))
    return error.code === 'NETWORK_ERROR' || error.status >= 500 || error.status === 429;
  if (AgentSessionsError.isInstance(error)) {
    return (
      error.code === ErrorCode.CLOSED ||
      error.code === ErrorCode.STORE_LOCKED ||
      error.code === ErrorCode.SOURCE_UNAVAILABLE
    );
  }
  return false;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError('INVALID_RESPONSE', 'the server sent malformed JSON');
  }
}

const segment = (value: string) => encodeURIComponent(value);

/** A connection of an event stream: its response, and a controller that drops it. */
interface Connection {
  response: Response;
  controller: AbortController;
  /** Call on every chunk: restarts the idle timer. */
  activity(): void;
  close(): void;
}

/** The typed HTTP client of `agent-sessions/http`. */
export class AgentSessionsClient {
  readonly #baseUrl: string;
  readonly #token: AgentSessionsClientOptions['token'];
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof globalThis.fetch;
  readonly #reconnect: Required<ReconnectOptions>;
  readonly #open = new Set<AbortController>();
  #closed = false;

  constructor(options: AgentSessionsClientOptions) {
    if (typeof options?.baseUrl !== 'string' || options.baseUrl === '') {
      throw new TypeError('AgentSessionsClient needs a baseUrl');
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#headers = { ...options.headers };
    const fetchFunction = options.fetch ?? globalThis.fetch;
    this.#fetch = (input, init) => fetchFunction(input, init);
    this.#reconnect = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 5_000,
      idleTimeoutMs: options.reconnect?.idleTimeoutMs ?? 45_000,
    };
    // A zero, negative or NaN delay would reconnect in a tight loop, hammering a server that is down.
    for (const name of ['initialDelayMs', 'maxDelayMs'] as const) {
      const value = this.#reconnect[name];
      if (!Number.isFinite(value) || value <= 0) {
        throw new TypeError(`invalid reconnect.${name} ${String(value)}: expected a positive number`);
      }
    }
    const idle = this.#reconnect.idleTimeoutMs;
    if (!Number.isFinite(idle) || idle < 0) {
      throw new TypeError(`invalid reconnect.idleTimeoutMs ${String(idle)}: expected 0 (never) or more`);
    }
  }

  // ─────────────────────────────────────────── sessions

  /** `POST /sessions`. */
  createSession(
    template: Omit<SessionTemplate, 'owner' | 'usage' | 'customModelsUsed' | 'parentId' | 'forkedFrom'> = {},
  ): Promise<Session> {
    return this.#json('POST', '/sessions', template);
  }

  /** `GET /sessions/{id}`. */
  getSession(id: string): Promise<Session> {
    return this.#json('GET', `/sessions/${segment(id)}`);
  }

  /** `GET /sessions`: the caller's sessions, newest first. */
  listSessions(options: Omit<ListOptions, 'owner'> = {}): Promise<Page<SessionSummary>> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options))
      if (value !== undefined) query.set(key, String(value));
    const text = query.toString();
    const suffix = text === '' ? '' : `?${text}`;
    return this.#json('GET', `/sessions${suffix}`);
  }

  /** `GET /sessions/{id}/status`. */
  getSessionSnapshot(id: string): Promise<SessionSnapshot> {
    return this.#json('GET', `/sessions/${segment(id)}/status`);
  }

  /** `DELETE /sessions/{id}`. */
  async deleteSession(id: string): Promise<void> {
    await this.#json('DELETE', `/sessions/${segment(id)}`);
  }

  /** `POST /sessions/batch/delete`: never fails as a whole. */
  async deleteSessions(
    ids: string[],
  ): Promise<{ deleted: string[]; failed: Array<{ id: string; error: AgentSessionsError }> }> {
    const result = await this.#json<{ deleted: string[]; failed: Array<{ id: string; error: unknown }> }>(
      'POST',
      '/sessions/batch/delete',
      { ids },
    );
    return {
      deleted: result.deleted,
      failed: result.failed.map(({ id, error }) => ({ id, error: asLibraryError(errorFromWire(error, 0)) })),
    };
  }

  /** `POST /sessions/{id}/wait`: resolves when the session's turns have fully stopped. */
  async waitStopped(id: string, options: { timeoutMs: number }): Promise<void> {
    await this.#json('POST', `/sessions/${segment(id)}/wait`, { timeoutMs: options.timeoutMs });
  }

  /** `POST /sessions/{id}/fork`. */
  forkSession(id: string, options: { beforeUserMessage?: number } = {}): Promise<Session> {
    return this.#json('POST', `/sessions/${segment(id)}/fork`, options);
  }

  /** `POST /sessions/batch/export`. */
  exportSessions(ids: string[]): Promise<ExportBundle> {
    return this.#json('POST', '/sessions/batch/export', { ids });
  }

  /** `POST /sessions/import`. */
  importSessions(
    bundle: ExportBundle,
    options: { onConflict: 'error' | 'skip' | 'replace' },
  ): Promise<{ imported: string[]; skipped: string[]; replaced: string[] }> {
    return this.#json('POST', '/sessions/import', { bundle, onConflict: options.onConflict });
  }

  // ─────────────────────────────────────────── turns

  /**
   * `POST /sessions/{id}/run`: resolves once the server admitted the turn (rejects with
   * `SESSION_BUSY` and the like before that), to a {@link TurnStream} that reconnects by itself.
   */
  async runSession(id: string, input: RunInput, options: RemoteRunOptions = {}): Promise<TurnStream> {
    if (options.signal?.aborted) throw abortReason(options.signal);
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed');
    const controller = this.#track(new AbortController());
    const onAbort = () => controller.abort(abortReason(options.signal!));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let response: Response;
    try {
      response = await this.#send('POST', `/sessions/${segment(id)}/run`, input, {
        signal: controller.signal,
        accept: 'text/event-stream',
      });
    } catch (error) {
      this.#open.delete(controller);
      if (options.signal?.aborted) throw abortReason(options.signal);
      if (this.#closed)
        throw new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed', { cause: error });
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    const turnId = response.headers.get(TURN_ID_HEADER);
    if (!response.body || turnId === null) {
      controller.abort(new Error('not a turn stream'));
      throw new HttpError('INVALID_RESPONSE', 'the run response is not a turn stream', {
        status: response.status,
      });
    }
    return new RemoteTurnStream({
      sessionId: id,
      turnId,
      first: this.#connection(response, controller),
      reconnect: (since) =>
        this.#openStream(`/sessions/${segment(id)}/turns/${segment(turnId)}/events`, since, undefined),
      backoff: (attempt) => this.#delay(attempt),
      closed: () => this.#closed,
      cancel: (reason) =>
        this.#json('POST', `/sessions/${segment(id)}/turns/${segment(turnId)}/cancel`, {
          ...(typeof reason === 'string' ? { reason } : {}),
        }).then(
          () => {},
          () => {},
        ),
      options,
    });
  }

  /** `POST /sessions/{id}/cancel`: cancels the running turn; false when none runs. */
  async cancelTurn(id: string, reason?: string): Promise<boolean> {
    const result = await this.#json<{ cancelled: boolean }>('POST', `/sessions/${segment(id)}/cancel`, {
      ...(reason === undefined ? {} : { reason }),
    });
    return result.cancelled;
  }

  /** `POST /sessions/{id}/steer`. */
  async steerSession(id: string, messages: MessageInput[]): Promise<void> {
    await this.#json('POST', `/sessions/${segment(id)}/steer`, { messages });
  }

  /** `POST /sessions/{id}/followup`, with the key as `Idempotency-Key`. */
  followUpSession(
    id: string,
    messages: MessageInput[],
    options: { idempotencyKey?: string } = {},
  ): Promise<{ status: 'queued' | 'started' | 'duplicate' }> {
    return this.#json(
      'POST',
      `/sessions/${segment(id)}/followup`,
      { messages },
      options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey },
    );
  }

  /** `POST /sessions/{id}/resume`: answers a pending tool confirmation. */
  async resumeSession(id: string, input: ResumeInput): Promise<void> {
    await this.#json('POST', `/sessions/${segment(id)}/resume`, input);
  }

  /** `POST /sessions/{id}/elicitation`: answers a pending elicitation. */
  async resumeElicitation(id: string, input: ResumeElicitationInput): Promise<void> {
    await this.#json('POST', `/sessions/${segment(id)}/elicitation`, input);
  }

  /**
   * `GET /sessions/{id}/events`: the session's events as an async iterable that reconnects by
   * itself (from the last seq, with bounded backoff) until `session_exited` (the session was
   * deleted) or the signal. A server that shuts down (`session_exited` `closed`) is reconnected to
   * like a dropped connection. A `gap` is handed to the caller as it comes (`reset` after a server
   * restart: reload the snapshot).
   */
  streamEvents(id: string, options: StreamEventsOptions = {}): AsyncIterable<SessionEvent> {
    return { [Symbol.asyncIterator]: () => this.#events(id, options) };
  }

  // ─────────────────────────────────────────── settings and history

  /** `PUT /sessions/{id}/model` (no `modelRef` clears the override). */
  async setSessionModel(id: string, modelRef?: string): Promise<void> {
    await this.#json('PUT', `/sessions/${segment(id)}/model`, { model: modelRef ?? null });
  }

  /** `GET /sessions/{id}/models`. */
  getAvailableModels(id: string): Promise<AvailableModels> {
    return this.#json('GET', `/sessions/${segment(id)}/models`);
  }

  /** `PATCH /sessions/{id}/title`. */
  async updateSessionTitle(id: string, title: string): Promise<void> {
    await this.#json('PATCH', `/sessions/${segment(id)}/title`, { title });
  }

  /** `PATCH /sessions/{id}/starred`. */
  async setSessionStarred(id: string, starred: boolean): Promise<void> {
    await this.#json('PATCH', `/sessions/${segment(id)}/starred`, { starred });
  }

  /** `PATCH /sessions/{id}/permissions`. */
  async updateSessionPermissions(id: string, permissions: Permissions): Promise<void> {
    await this.#json('PATCH', `/sessions/${segment(id)}/permissions`, { permissions });
  }

  /** `PATCH /sessions/{id}/safety-policy`. */
  async setSessionSafetyPolicy(id: string, safetyPolicy: SafetyPolicy): Promise<void> {
    await this.#json('PATCH', `/sessions/${segment(id)}/safety-policy`, { safetyPolicy });
  }

  /** `POST /sessions/{id}/tools/toggle`: resolves to the new policy. */
  async toggleToolApproval(id: string): Promise<SafetyPolicy> {
    const result = await this.#json<{ safetyPolicy: SafetyPolicy }>(
      'POST',
      `/sessions/${segment(id)}/tools/toggle`,
    );
    return result.safetyPolicy;
  }

  /** `POST /sessions/{id}/messages`. */
  addMessage(id: string, message: MessageInput): Promise<Message> {
    return this.#json('POST', `/sessions/${segment(id)}/messages`, { message });
  }

  /** `PATCH /sessions/{id}/messages/{messageId}`. */
  updateMessage(
    id: string,
    messageId: string,
    message: Partial<Message> & { content: string },
  ): Promise<Message> {
    const { id: _ignored, ...rest } = message;
    return this.#json('PATCH', `/sessions/${segment(id)}/messages/${segment(messageId)}`, { message: rest });
  }

  /** `POST /sessions/{id}/summaries`. */
  addSummary(
    id: string,
    summary: Omit<SummaryItem, 'kind' | 'id' | 'createdAt'> & Partial<Pick<SummaryItem, 'id' | 'createdAt'>>,
  ): Promise<SummaryItem> {
    return this.#json('POST', `/sessions/${segment(id)}/summaries`, summary);
  }

  /** `GET /ping`: resolves when the API answers and accepts the credentials. */
  async ping(): Promise<void> {
    await this.#json('GET', '/ping');
  }

  /** Drops every open event stream and turn connection of this client. */
  close(): void {
    this.#closed = true;
    for (const controller of this.#open) controller.abort(new Error('the client was closed'));
    this.#open.clear();
  }

  // ─────────────────────────────────────────── plumbing

  #track(controller: AbortController): AbortController {
    this.#open.add(controller);
    controller.signal.addEventListener('abort', () => this.#open.delete(controller), { once: true });
    return controller;
  }

  #delay(attempt: number): number {
    return Math.min(this.#reconnect.maxDelayMs, this.#reconnect.initialDelayMs * 2 ** attempt);
  }

  async #headersFor(extra: Record<string, string>): Promise<Record<string, string>> {
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    return { ...this.#headers, ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async #send(
    method: string,
    path: string,
    body: unknown,
    options: { signal?: AbortSignal; accept?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers = await this.#headersFor({
      accept: options.accept ?? 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    });
    const init: RequestInit = {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    // A request that is safe to send twice gets a second try at once: a pooled keep-alive
    // connection to a server that restarted fails on first use. Other POSTs are never resent.
    const retriable = method !== 'POST' || 'idempotency-key' in headers;
    let response: Response;
    for (let attempt = 0; ; attempt++) {
      try {
        response = await this.#fetch(`${this.#baseUrl}${path}`, init);
        break;
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (retriable && attempt === 0) continue;
        throw new HttpError('NETWORK_ERROR', `could not reach ${this.#baseUrl}`, { cause: error });
      }
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      throw errorFromWire(parsed, response.status);
    }
    return response;
  }

  async #json<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await this.#send(method, path, body, { headers });
    if (response.status === 204) return undefined as T;
    return parseJson(await response.text()) as T;
  }

  #connection(response: Response, controller: AbortController): Connection {
    const idle = this.#reconnect.idleTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (idle <= 0) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(
        () => controller.abort(new HttpError('NETWORK_ERROR', 'the event stream went silent')),
        idle,
      );
    };
    arm();
    return {
      response,
      controller,
      activity: arm,
      close: () => {
        if (timer !== undefined) clearTimeout(timer);
        controller.abort(new Error('closed'));
      },
    };
  }

  async #openStream(
    path: string,
    since: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Connection> {
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed');
    const controller = this.#track(new AbortController());
    const onAbort = () => controller.abort(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    controller.signal.addEventListener('abort', () => signal?.removeEventListener('abort', onAbort), {
      once: true,
    });
    try {
      const response = await this.#send('GET', path, undefined, {
        signal: controller.signal,
        accept: 'text/event-stream',
        headers: since === undefined ? {} : { 'last-event-id': String(since) },
      });
      if (!response.body)
        throw new HttpError('INVALID_RESPONSE', 'the event stream has no body', { status: response.status });
      return this.#connection(response, controller);
    } catch (error) {
      controller.abort(error);
      throw error;
    }
  }

  async *#events(id: string, options: StreamEventsOptions): AsyncGenerator<SessionEvent> {
    let since = options.since;
    let attempt = 0;
    const path = `/sessions/${segment(id)}/events`;
    for (;;) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      let failure: unknown;
      let connection: Connection | undefined;
      try {
        connection = await this.#openStream(path, since, options.signal);
        if (attempt > 0) options.onConnectionChange?.({ state: 'connected' });
        attempt = 0;
        let lagged = false;
        let closedByServer = false;
        for await (const message of readSse(connection.response.body!, connection.activity)) {
          const control = controlMessage(message);
          if (control?.kind === 'lagged') {
            since = control.lastSeq ?? since;
            lagged = true;
            break;
          }
          if (control?.kind === 'error') throw control.error;
          if (control) continue;
          const event = parseJson(message.data) as SessionEvent;
          // `closed` is the server's manager shutting down (a restart, a deploy), not the end of the
          // session: reconnect like after a drop, and the next server's log starts with a gap.
          if (event.type === 'session_exited' && event.reason === 'closed') {
            closedByServer = true;
            break;
          }
          if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed');
          since = positionAfter(event, since);
          yield event;
          if (event.type === 'session_exited') return;
        }
        if (lagged) continue;
        failure = closedByServer
          ? new AgentSessionsError(ErrorCode.CLOSED, 'the server closed the event stream')
          : new HttpError('NETWORK_ERROR', 'the event stream ended early');
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (this.#closed)
          throw new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed', { cause: error });
        if (!isRetriable(error) && !isDropped(error, connection)) throw error;
        failure = error;
      } finally {
        connection?.close();
      }
      const delayMs = this.#delay(attempt);
      attempt++;
      options.onConnectionChange?.({ state: 'reconnecting', attempt, delayMs, error: failure });
      await sleep(delayMs, options.signal);
    }
  }
}

/**
 * The position to reconnect from after `event`: its seq, or for a `gap` the seq before `nextSeq`,
 * so a connection dropped right after a gap does not get (and hand on) the same gap again.
 */
function positionAfter(event: SessionEvent, since: number | undefined): number | undefined {
  if (event.type === 'gap') return event.nextSeq - 1;
  return event.seq > 0 ? event.seq : since;
}

/** A connection we dropped ourselves (idle timeout) or the network dropped mid-body. */
function isDropped(error: unknown, connection: Connection | undefined): boolean {
  if (!connection) return false;
  // A body that fails mid-way (reset, idle abort) surfaces as a TypeError or an AbortError.
  return (
    connection.controller.signal.aborted ||
    error instanceof TypeError ||
    (error as Error)?.name === 'AbortError'
  );
}

type ControlMessage =
  | { kind: 'lagged'; lastSeq: number | undefined }
  | { kind: 'error'; error: AgentSessionsError | HttpError }
  | { kind: 'result'; result: TurnResult };

function asLibraryError(error: AgentSessionsError | HttpError): AgentSessionsError {
  return AgentSessionsError.isInstance(error)
    ? error
    : new AgentSessionsError(ErrorCode.RUNTIME_FAILED, error.message, { cause: error });
}

function controlMessage(message: SseMessage): ControlMessage | undefined {
  switch (message.event) {
    case 'lagged': {
      const data = parseJson(message.data) as { lastSeq?: unknown };
      return { kind: 'lagged', lastSeq: typeof data.lastSeq === 'number' ? data.lastSeq : undefined };
    }
    case 'stream_error':
      return { kind: 'error', error: errorFromWire(parseJson(message.data), 0) };
    case 'turn_result': {
      const data = parseJson(message.data) as {
        stopReason: TurnResult['stopReason'];
        error?: unknown;
        discarded?: Message[];
      };
      return {
        kind: 'result',
        result: {
          stopReason: data.stopReason,
          ...(data.error === undefined ? {} : { error: asLibraryError(errorFromWire(data.error, 0)) }),
          discarded: data.discarded ?? [],
        },
      };
    }
    default:
      return undefined;
  }
}

interface RemoteTurnInit {
  sessionId: string;
  turnId: string;
  first: Connection;
  reconnect(since: number | undefined): Promise<Connection>;
  backoff(attempt: number): number;
  /** True once the client was closed: stop reconnecting. */
  closed(): boolean;
  cancel(reason: unknown): Promise<void>;
  options: RemoteRunOptions;
}

/**
 * A turn stream over HTTP. A pump reads the server's stream (reconnecting from the last seq after
 * a drop) into a queue the single consumer reads, so `done` settles even when nobody iterates.
 */
class RemoteTurnStream implements TurnStream {
  readonly turnId: string;
  readonly done: Promise<TurnResult>;
  readonly #init: RemoteTurnInit;
  #queue: SessionEvent[] = [];
  #waiter: ((result: IteratorResult<SessionEvent>) => void) | undefined;
  #finished = false;
  #detached = false;
  #iterated = false;
  /** Aborted once the turn was cancelled (signal, `cancel()`, a reader leaving): stop reconnecting. */
  readonly #cancelled = new AbortController();
  #resolve!: (result: TurnResult) => void;

  constructor(init: RemoteTurnInit) {
    this.turnId = init.turnId;
    this.#init = init;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    const signal = init.options.signal;
    if (signal) {
      const onAbort = () => this.cancel(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      void this.done.then(() => signal.removeEventListener('abort', onAbort));
    }
    void this.#pump();
  }

  cancel(reason?: unknown): void {
    if (this.#finished) return;
    this.#cancelled.abort(reason);
    void this.#init.cancel(reason);
  }

  [Symbol.asyncIterator](): AsyncIterator<SessionEvent> {
    if (this.#iterated) throw new TypeError('a TurnStream can be iterated once');
    this.#iterated = true;
    return {
      next: () => {
        const event = this.#queue.shift();
        if (event) return Promise.resolve({ value: event, done: false });
        if (this.#finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.#waiter = resolve;
        });
      },
      return: async () => {
        this.#detach();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * The same events as arrays (see {@link TurnStream.batches}): each `next()` yields what the
   * server sent since the last one. Counts as the stream's one iteration.
   */
  batches(): AsyncIterable<readonly SessionEvent[]> {
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<readonly SessionEvent[]> => {
        const events = this[Symbol.asyncIterator]();
        return {
          next: async () => {
            const first = await events.next();
            if (first.done) return first;
            return { value: [first.value, ...this.#queue.splice(0)], done: false };
          },
          return: async () => {
            await events.return?.();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#queue = [];
    if ((this.#init.options.onDetach ?? 'cancel') === 'cancel')
      this.cancel(new Error('the reader left the turn stream'));
  }

  #push(event: SessionEvent): void {
    if (this.#detached) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter({ value: event, done: false });
    } else this.#queue.push(event);
  }

  #finish(result: TurnResult): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#resolve(result);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  async #pump(): Promise<void> {
    let connection: Connection | undefined = this.#init.first;
    let since: number | undefined;
    let attempt = 0;
    const onChange = this.#init.options.onConnectionChange;
    for (;;) {
      let failure: unknown;
      try {
        if (!connection) {
          connection = await this.#init.reconnect(since);
          onChange?.({ state: 'connected' });
        }
        attempt = 0;
        let lagged = false;
        for await (const message of readSse(connection.response.body!, connection.activity)) {
          const control = controlMessage(message);
          if (control?.kind === 'result') return this.#finish(control.result);
          if (control?.kind === 'lagged') {
            since = control.lastSeq ?? since;
            lagged = true;
            break;
          }
          if (control?.kind === 'error') throw control.error;
          const event = parseJson(message.data) as SessionEvent;
          since = positionAfter(event, since);
          this.#push(event);
        }
        if (!lagged) failure = new HttpError('NETWORK_ERROR', 'the turn stream ended early');
      } catch (error) {
        if (this.#init.closed()) {
          return this.#finish({
            stopReason: 'error',
            error: new AgentSessionsError(ErrorCode.CLOSED, 'the client was closed', { cause: error }),
            discarded: [],
          });
        }
        if (HttpError.isInstance(error) && error.code === 'TURN_NOT_FOUND') {
          return this.#finish({
            stopReason: 'error',
            error: new AgentSessionsError(
              ErrorCode.CLOSED,
              `the server no longer knows turn ${this.turnId} of session ${this.#init.sessionId} (it may have restarted)`,
              { cause: error },
            ),
            discarded: [],
          });
        }
        if (!isRetriable(error) && !isDropped(error, connection)) {
          return this.#finish({
            stopReason: 'error',
            error: asLibraryError(
              AgentSessionsError.isInstance(error) || HttpError.isInstance(error)
                ? error
                : new HttpError('NETWORK_ERROR', String(error)),
            ),
            discarded: [],
          });
        }
        failure = error;
      } finally {
        connection?.close();
        connection = undefined;
      }
      if (failure === undefined) continue;
      // A cancelled turn whose connection dropped is not waited for: with the server gone, the
      // pump would reconnect for ever and `done` never settle.
      if (this.#cancelled.signal.aborted) return this.#finish({ stopReason: 'cancelled', discarded: [] });
      const delayMs = this.#init.backoff(attempt);
      attempt++;
      onChange?.({ state: 'reconnecting', attempt, delayMs, error: failure });
      try {
        await sleep(delayMs, this.#cancelled.signal);
      } catch {
        return this.#finish({ stopReason: 'cancelled', discarded: [] });
      }
    }
  }
}
