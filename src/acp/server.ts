/**
 * `serveAcp`: a {@link SessionManager} served as an Agent Client Protocol (v1) agent over one
 * connection. It is built on the official SDK's app API (`agent().onRequest(...)`), uses only the
 * manager's public API, and keeps per connection: which sessions are open (new, load or resume
 * opened them; close and delete end them), the prompts in flight and their arrival order.
 *
 * Prompts of one session run one after another in arrival order: a prompt that arrives while one
 * runs waits (its request stays open) and runs as its own turn when the one before it has ended. A
 * `session/cancel` cancels the running prompt and every prompt of that session queued behind it
 * that arrived before the cancel; each answers `cancelled`.
 */
import {
  type AgentConnection,
  type AgentContext,
  type AuthMethod,
  agent,
  type ClientApp,
  type ClientCapabilities,
  type ClientConnection,
  type Implementation,
  type InitializeResponse,
  type McpServer,
  methods,
  PROTOCOL_VERSION,
  RequestError,
  type RequestPermissionOutcome,
  type SessionConfigOption,
  type SessionUpdate,
  type StopReason,
  type Stream,
} from '@agentclientprotocol/sdk';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  type Logger,
  type SessionEventOf,
  type SessionManager,
  type SessionTemplate,
  silentLogger,
  type TurnStream,
} from '../index.js';
import { ArrivalOrder, type PromptTicket } from './arrival-order.js';
import { configOptions, MODEL_CONFIG_ID, modelRefOf } from './config-options.js';
import { promptToMessage } from './content.js';
import { permissionOptions, permissionRequest } from './permissions.js';
import { invalidParams, toRequestError } from './protocol-errors.js';
import { replaySession } from './replay.js';
import type { DescribeToolCall } from './tool-calls.js';
import { TurnUpdates } from './turn-updates.js';

/** What `session/new`, `session/load` and `session/resume` tell the host (e.g. to connect MCP servers). */
export interface AcpSessionOpened {
  /** The request that opened it. */
  method: 'new' | 'load' | 'resume';
  /** The session opened. */
  sessionId: string;
  /** The working directory the client gave. */
  cwd: string;
  /** The MCP servers the client asks the agent to use; the host wires them into its runtime. */
  mcpServers: McpServer[];
}

/**
 * Authentication the agent requires (ACP `authenticate`): until one of `methods` succeeded on a
 * connection, its session methods fail with `-32000` (auth required).
 */
export interface AcpAuthOptions {
  /** The methods advertised in the `initialize` response. */
  methods: AuthMethod[];
  /** Authenticates with one of them; a rejection fails the `authenticate` request. */
  authenticate(methodId: string, options: { signal: AbortSignal }): Promise<void>;
}

/** Options of {@link serveAcp}. */
export interface ServeAcpOptions {
  /** Name and version sent in the `initialize` response. @default { name: 'agent-sessions', version: '0.0.0' } */
  agentInfo?: Implementation;
  /** Where the agent logs. Nothing is printed by default (stdout is the protocol's). */
  logger?: Logger;
  /**
   * Fields of each session `session/new` creates (source, agent, safety policy, attributes…). The
   * working dir is always the request's `cwd`, validated by the manager's working-dir rules.
   */
  sessionTemplate?: (request: {
    cwd: string;
    mcpServers: McpServer[];
  }) => SessionTemplate | Promise<SessionTemplate>;
  /**
   * Called when a session is opened on this connection. If it throws, the request fails with
   * `-32603` and the session is not open; a session that `session/new` created is deleted.
   */
  onSessionOpened?: (event: AcpSessionOpened) => void | Promise<void>;
  /** Title, kind and locations of a tool call as the editor shows it. @default title = tool name, kind 'other' */
  describeToolCall?: DescribeToolCall;
  /** Sessions per `session/list` page (1–1000). @default 50 */
  listPageSize?: number;
  /** Context window, in tokens, reported in `usage_update` when a runtime's usage does not say. Without it, such usage sends no update. */
  contextWindow?: number;
  /** Currency of the costs runtimes report. @default 'USD' */
  costCurrency?: string;
  /** Authentication; without it the agent advertises no auth methods and needs none. */
  auth?: AcpAuthOptions;
  /**
   * The principal this connection acts for (`Session.owner`): new sessions get it, `session/list`
   * shows only its sessions, and another owner's session is `-32002` to load, resume or delete, as
   * if it did not exist. Without it every session is reachable.
   */
  owner?: string;
}

/** A served connection. */
export interface AcpAgentConnection {
  /** The SDK's connection (its `client` context calls the client directly). */
  readonly connection: AgentConnection;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /** Resolves when the connection has closed and every prompt of it has ended. */
  readonly closed: Promise<void>;
  /** Ids of the sessions open on this connection. */
  openSessions(): string[];
  /** Cancels this connection's prompts and closes it. The manager stays open. */
  close(): Promise<void>;
}

/** A connection served in process to an SDK client app: both ends. */
export interface AcpInProcessConnection extends AcpAgentConnection {
  /** The client app's side of the connection (`client.agent.request(...)`). */
  readonly client: ClientConnection;
}

interface OpenSession {
  /** The session's cost as last known, for `usage_update.cost`. */
  cost: number;
  /** The config options last sent to the client, as JSON. */
  config: string;
  /** Settles when every prompt of the session that has arrived so far has ended. */
  tail: Promise<void>;
}

const DEFAULT_AGENT_INFO: Implementation = { name: 'agent-sessions', version: '0.0.0' };

function isStream(value: unknown): value is Stream {
  return typeof value === 'object' && value !== null && 'readable' in value && 'writable' in value;
}

/** Two linked in-memory message streams: what one end writes, the other reads. */
function streamPair(): [Stream, Stream] {
  const forth = new TransformStream();
  const back = new TransformStream();
  return [
    { readable: back.readable, writable: forth.writable },
    { readable: forth.readable, writable: back.writable },
  ];
}

/** Resolves when `promise` settles or `signal` aborts, whichever comes first. */
function untilSettledOrAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}

/** A controller aborted when any of `signals` aborts; `dispose` removes the listeners. */
function linkedController(signals: AbortSignal[]): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  const listeners: Array<() => void> = [];
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    listeners.push(() => signal.removeEventListener('abort', onAbort));
  }
  return {
    controller,
    dispose: () => {
      for (const remove of listeners) remove();
    },
  };
}

function newMessageId(): string {
  return `msg_${globalThis.crypto.randomUUID().replaceAll('-', '')}`;
}

/**
 * Serves `manager` as an ACP v1 agent on one connection: a {@link Stream} (for stdio, the SDK's
 * `ndJsonStream(output, input)`), or an SDK `ClientApp` to connect in process (then the result
 * also holds the client's connection). Call it once per connection; the manager may serve many.
 */
export function serveAcp(
  manager: SessionManager,
  transport: Stream,
  options?: ServeAcpOptions,
): AcpAgentConnection;
/** Serves `manager` in process to an SDK `ClientApp`; the result also holds the client's connection. */
export function serveAcp(
  manager: SessionManager,
  transport: ClientApp,
  options?: ServeAcpOptions,
): AcpInProcessConnection;
/** Implementation of both forms. */
export function serveAcp(
  manager: SessionManager,
  transport: Stream | ClientApp,
  options: ServeAcpOptions = {},
): AcpAgentConnection | AcpInProcessConnection {
  const server = new AcpSessionServer(manager, options);
  if (isStream(transport)) return server.connect(transport);
  const [agentEnd, clientEnd] = streamPair();
  const client = transport.connect(clientEnd);
  const served = server.connect(agentEnd);
  void served.closed.then(() => client.close());
  void client.closed.then(() => served.connection.close());
  return Object.assign(served, { client });
}

class AcpSessionServer {
  readonly #manager: SessionManager;
  readonly #options: ServeAcpOptions;
  readonly #logger: Logger;
  readonly #order = new ArrivalOrder();
  readonly #open = new Map<string, OpenSession>();
  readonly #prompts = new Set<Promise<unknown>>();
  #clientCapabilities: ClientCapabilities = {};
  #authenticated = false;

  constructor(manager: SessionManager, options: ServeAcpOptions) {
    this.#manager = manager;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const pageSize = options.listPageSize;
    if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000)) {
      throw new InvalidArgumentError('invalid listPageSize: expected an integer from 1 to 1000', {
        issues: [{ path: ['listPageSize'], message: 'expected an integer from 1 to 1000' }],
      });
    }
    if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner === '')) {
      throw new InvalidArgumentError('invalid owner: expected a non-empty string', {
        issues: [{ path: ['owner'], message: 'expected a non-empty string' }],
      });
    }
  }

  connect(stream: Stream): AcpAgentConnection {
    const app = agent({ name: 'agent-sessions' })
      .onRequest(methods.agent.initialize, ({ params }) => this.#initialize(params.clientCapabilities))
      .onRequest(methods.agent.authenticate, ({ params, signal }) =>
        this.#authenticate(params.methodId, signal),
      )
      .onRequest(methods.agent.session.new, ({ params }) => this.#newSession(params.cwd, params.mcpServers))
      .onRequest(methods.agent.session.load, ({ params, client }) =>
        this.#loadSession(params.sessionId, params.cwd, params.mcpServers, client),
      )
      .onRequest(methods.agent.session.list, ({ params }) => this.#listSessions(params.cwd, params.cursor))
      .onRequest(methods.agent.session.resume, ({ params }) =>
        this.#resumeSession(params.sessionId, params.cwd, params.mcpServers ?? []),
      )
      .onRequest(methods.agent.session.close, ({ params }) => this.#closeSession(params.sessionId))
      .onRequest(methods.agent.session.delete, ({ params }) => this.#deleteSession(params.sessionId))
      .onRequest(methods.agent.session.setConfigOption, ({ params }) =>
        this.#setConfigOption(params.sessionId, params.configId, params.value),
      )
      .onRequest(methods.agent.session.prompt, (context) => {
        const work = this.#prompt(context.params.sessionId, context.params.prompt, context.requestId, {
          signal: context.signal,
          client: context.client,
        });
        this.#prompts.add(work);
        const forget = () => this.#prompts.delete(work);
        work.then(forget, forget);
        return work;
      })
      // Cancels are applied when they arrive (see ArrivalOrder); a late handler must not cancel a
      // prompt that arrived after the cancel.
      .onNotification(methods.agent.session.cancel, () => {});

    const connection = app.connect(this.#order.observe(stream));
    const closed = connection.closed.then(async () => {
      this.#order.cancelAll(new Error('the ACP connection closed'));
      await Promise.allSettled([...this.#prompts]);
      this.#open.clear();
    });
    return {
      connection,
      signal: connection.signal,
      closed,
      openSessions: () => [...this.#open.keys()],
      close: async () => {
        this.#order.cancelAll(new Error('the ACP connection is closing'));
        connection.close();
        await closed;
      },
    };
  }

  // ------------------------------------------------------------ initialize, authenticate

  #initialize(capabilities: ClientCapabilities | undefined): InitializeResponse {
    this.#clientCapabilities = capabilities ?? {};
    return {
      protocolVersion: PROTOCOL_VERSION,
      agentCapabilities: {
        loadSession: true,
        promptCapabilities: { image: true, audio: false, embeddedContext: false },
        mcpCapabilities: { http: false, sse: false },
        sessionCapabilities: { list: {}, resume: {}, close: {}, delete: {} },
      },
      authMethods: this.#options.auth?.methods ?? [],
      agentInfo: this.#options.agentInfo ?? DEFAULT_AGENT_INFO,
    };
  }

  async #authenticate(methodId: string, signal: AbortSignal): Promise<Record<string, never>> {
    const auth = this.#options.auth;
    if (!auth?.methods.some((method) => method.id === methodId)) {
      throw invalidParams(`unknown authentication method ${JSON.stringify(methodId)}`, { methodId });
    }
    try {
      await auth.authenticate(methodId, { signal });
      this.#authenticated = true;
    } catch (error) {
      throw RequestError.authRequired({ methodId }, error instanceof Error ? error.message : String(error));
    }
    return {};
  }

  /** `-32000` while the host requires authentication and this connection has none. */
  #requireAuth(): void {
    if (this.#options.auth && !this.#authenticated) {
      throw RequestError.authRequired(undefined, 'authenticate first');
    }
  }

  // ------------------------------------------------------------ session lifecycle

  async #newSession(cwd: string, mcpServers: McpServer[]) {
    this.#requireAuth();
    let created: string | undefined;
    try {
      const template = (await this.#options.sessionTemplate?.({ cwd, mcpServers })) ?? {};
      const session = await this.#manager.createSession({
        ...template,
        workingDir: cwd,
        ...(this.#options.owner === undefined ? {} : { owner: this.#options.owner }),
      });
      created = session.id;
      this.#openSession(session.id, session.usage.cost);
      const options = await this.#configOptions(session.id);
      await this.#opened({ method: 'new', sessionId: session.id, cwd, mcpServers });
      return { sessionId: session.id, configOptions: options };
    } catch (error) {
      // The client got no session id: a session left behind would only clutter session/list.
      if (created !== undefined) {
        this.#open.delete(created);
        await this.#manager.deleteSession(created).catch((cleanup: unknown) => {
          this.#logger.warn('removing a session whose session/new failed did not work', {
            sessionId: created,
            error: cleanup,
          });
        });
      }
      throw toRequestError(error);
    }
  }

  async #loadSession(sessionId: string, cwd: string, mcpServers: McpServer[], client: AgentContext) {
    this.#requireAuth();
    const session = await this.#manager.getSession(sessionId).catch((error: unknown) => {
      throw toRequestError(error, sessionId);
    });
    this.#checkOwner(sessionId, session.owner);
    this.#checkCwd(sessionId, session.workingDir, cwd);
    const capabilities = {
      notices: this.#clientCapabilities.session?.notices != null,
      compaction: this.#clientCapabilities.session?.compaction != null,
    };
    // The whole history goes out before the response, as ACP requires.
    for (const update of replaySession(session, capabilities, this.#options.describeToolCall)) {
      await client.notify(methods.client.session.update, { sessionId, update });
    }
    this.#openSession(sessionId, session.usage.cost);
    const options = await this.#configOptions(sessionId);
    await this.#opened({ method: 'load', sessionId, cwd, mcpServers });
    return { configOptions: options };
  }

  async #resumeSession(sessionId: string, cwd: string, mcpServers: McpServer[]) {
    this.#requireAuth();
    const snapshot = await this.#manager.getSessionSnapshot(sessionId).catch((error: unknown) => {
      throw toRequestError(error, sessionId);
    });
    this.#checkOwner(sessionId, snapshot.session.owner);
    this.#checkCwd(sessionId, snapshot.session.workingDir, cwd);
    this.#openSession(sessionId, snapshot.session.usage.cost);
    const options = await this.#configOptions(sessionId);
    await this.#opened({ method: 'resume', sessionId, cwd, mcpServers });
    return { configOptions: options };
  }

  async #listSessions(cwd: string | null | undefined, cursor: string | null | undefined) {
    this.#requireAuth();
    if (typeof cwd === 'string' && !cwd.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(cwd)) {
      throw invalidParams(`cwd must be an absolute path, got ${JSON.stringify(cwd)}`, { cwd });
    }
    try {
      const page = await this.#manager.listSessions({
        limit: this.#options.listPageSize ?? 50,
        ...(typeof cursor === 'string' ? { cursor } : {}),
        ...(typeof cwd === 'string' ? { workingDir: cwd } : {}),
        ...(this.#options.owner === undefined ? {} : { owner: this.#options.owner }),
      });
      return {
        // ACP sessions have a working dir; sessions made elsewhere without one are not listed.
        sessions: page.sessions.flatMap((summary) =>
          summary.workingDir === undefined
            ? []
            : [
                {
                  sessionId: summary.id,
                  cwd: summary.workingDir,
                  title: summary.title === '' ? null : summary.title,
                  updatedAt: summary.updatedAt,
                },
              ],
        ),
        ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
      };
    } catch (error) {
      throw toRequestError(error);
    }
  }

  async #closeSession(sessionId: string): Promise<Record<string, never>> {
    const open = this.#requireOpen(sessionId);
    this.#order.cancelSession(sessionId, new Error(`session/close for ${sessionId}`));
    await open.tail;
    this.#open.delete(sessionId);
    return {};
  }

  async #deleteSession(sessionId: string): Promise<Record<string, never>> {
    this.#requireAuth();
    try {
      if (this.#options.owner !== undefined) {
        this.#checkOwner(sessionId, (await this.#manager.getSession(sessionId)).owner);
      }
      this.#order.cancelSession(sessionId, new Error(`session/delete for ${sessionId}`));
      await this.#manager.deleteSession(sessionId);
    } catch (error) {
      throw toRequestError(error, sessionId);
    }
    await this.#open.get(sessionId)?.tail;
    this.#open.delete(sessionId);
    return {};
  }

  /** Another owner's session does not exist for this connection. */
  #checkOwner(sessionId: string, owner: string | undefined): void {
    if (this.#options.owner !== undefined && owner !== this.#options.owner) {
      throw RequestError.sessionNotFound(sessionId);
    }
  }

  #checkCwd(sessionId: string, workingDir: string | undefined, cwd: string): void {
    if (workingDir !== undefined && workingDir !== cwd) {
      throw invalidParams(
        `session ${JSON.stringify(sessionId)} works in ${JSON.stringify(workingDir)}, not ${JSON.stringify(cwd)}`,
        { sessionId, cwd },
      );
    }
  }

  #openSession(sessionId: string, cost: number): void {
    const existing = this.#open.get(sessionId);
    if (existing) {
      existing.cost = cost;
      return;
    }
    this.#open.set(sessionId, { cost, config: '[]', tail: Promise.resolve() });
  }

  #requireOpen(sessionId: string): OpenSession {
    const open = this.#open.get(sessionId);
    if (!open) throw RequestError.sessionNotFound(sessionId);
    return open;
  }

  async #opened(event: AcpSessionOpened): Promise<void> {
    try {
      await this.#options.onSessionOpened?.(event);
    } catch (error) {
      this.#open.delete(event.sessionId);
      throw toRequestError(error, event.sessionId);
    }
  }

  // ------------------------------------------------------------ config options

  /** The session's config options, remembered as sent. A runtime that cannot list models gives none. */
  async #configOptions(sessionId: string): Promise<SessionConfigOption[]> {
    let options: SessionConfigOption[] = [];
    try {
      options = configOptions(await this.#manager.getAvailableModels(sessionId));
    } catch (error) {
      if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)) throw error;
      this.#logger.warn('listing models for ACP config options failed', { sessionId, error });
    }
    const open = this.#open.get(sessionId);
    if (open) open.config = JSON.stringify(options);
    return options;
  }

  async #setConfigOption(sessionId: string, configId: string, value: string | boolean) {
    this.#requireOpen(sessionId);
    if (configId !== MODEL_CONFIG_ID) {
      throw invalidParams(`unknown config option ${JSON.stringify(configId)}`, { configId });
    }
    try {
      const available = await this.#manager.getAvailableModels(sessionId);
      const option = configOptions(available)[0];
      const values = option?.type === 'select' ? option.options : [];
      if (typeof value !== 'string' || !values.some((entry) => 'value' in entry && entry.value === value)) {
        throw invalidParams(`${JSON.stringify(value)} is not a model of this session`, { configId });
      }
      await this.#manager.setSessionModel(sessionId, modelRefOf(value, available));
      return { configOptions: await this.#configOptions(sessionId) };
    } catch (error) {
      throw toRequestError(error, sessionId);
    }
  }

  /** Sends `config_option_update` when the options changed since they were last sent (e.g. elsewhere). */
  async #refreshConfig(sessionId: string, client: AgentContext): Promise<void> {
    const open = this.#open.get(sessionId);
    if (!open) return;
    const before = open.config;
    let options: SessionConfigOption[];
    try {
      options = await this.#configOptions(sessionId);
    } catch {
      return;
    }
    if (JSON.stringify(options) !== before) {
      await client.notify(methods.client.session.update, {
        sessionId,
        update: { sessionUpdate: 'config_option_update', configOptions: options },
      });
    }
  }

  // ------------------------------------------------------------ prompt

  async #prompt(
    sessionId: string,
    prompt: Parameters<typeof promptToMessage>[0],
    requestId: string | number | null,
    context: { signal: AbortSignal; client: AgentContext },
  ): Promise<{ stopReason: StopReason }> {
    const ticket = this.#order.claim(requestId, sessionId);
    // `$/cancel_request` for this prompt, or the connection closing, cancels it like session/cancel.
    const onRequestAbort = () => ticket.abort(context.signal.reason);
    context.signal.addEventListener('abort', onRequestAbort, { once: true });
    let release: () => void = () => {};
    try {
      // Cancelled before its handler ran (a cancel right behind it): it never starts.
      if (ticket.signal.aborted) return { stopReason: 'cancelled' };
      const open = this.#requireOpen(sessionId);
      const message = promptToMessage(prompt, newMessageId());
      // Prompts of a session run one after another, in arrival order.
      const before = open.tail;
      const mine = new Promise<void>((resolve) => {
        release = resolve;
      });
      open.tail = before.then(() => mine);
      await untilSettledOrAborted(before, ticket.signal);
      if (ticket.signal.aborted) return { stopReason: 'cancelled' };
      return await this.#runPrompt(sessionId, open, message, ticket, context.client);
    } finally {
      release();
      context.signal.removeEventListener('abort', onRequestAbort);
      this.#order.release(requestId);
    }
  }

  async #runPrompt(
    sessionId: string,
    open: OpenSession,
    message: ReturnType<typeof promptToMessage>,
    ticket: PromptTicket,
    client: AgentContext,
  ): Promise<{ stopReason: StopReason }> {
    let stream: TurnStream;
    try {
      stream = await this.#manager.runSession(sessionId, { messages: [message] }, { signal: ticket.signal });
    } catch (error) {
      if (ticket.signal.aborted) return { stopReason: 'cancelled' };
      throw toRequestError(error, sessionId);
    }
    const updates = new TurnUpdates({
      promptMessageIds: new Set([message.id]),
      costBefore: open.cost,
      costCurrency: this.#options.costCurrency ?? 'USD',
      contextWindow: this.#options.contextWindow,
      notices: this.#clientCapabilities.session?.notices != null,
      describeToolCall: this.#options.describeToolCall,
    });
    const send = async (list: SessionUpdate[]) => {
      for (const update of list) await client.notify(methods.client.session.update, { sessionId, update });
    };
    // Requests to the client (permissions, elicitations) end with the turn or the prompt's cancel.
    const turnEnded = new AbortController();
    const { controller: requests, dispose } = linkedController([ticket.signal, turnEnded.signal]);
    const asks: Promise<void>[] = [];
    try {
      for await (const event of stream) {
        if (event.type === 'tool_call_confirmation') {
          await send(updates.ensureAnnounced(event.toolCall));
          asks.push(this.#askPermission(sessionId, event, stream, requests.signal, client));
        } else if (event.type === 'elicitation_request') {
          asks.push(this.#elicit(sessionId, event, requests.signal, client));
        } else {
          await send(updates.translate(event));
        }
      }
    } finally {
      turnEnded.abort(new Error('the turn ended'));
      dispose();
    }
    const result = await stream.done;
    await send(
      updates.flush(
        result.stopReason === 'cancelled' || result.stopReason === 'error' ? 'failed' : 'completed',
      ),
    );
    await Promise.allSettled(asks);
    open.cost = updates.cost;
    await this.#refreshConfig(sessionId, client);
    if (ticket.signal.aborted || result.stopReason === 'cancelled') return { stopReason: 'cancelled' };
    if (result.stopReason === 'error') {
      // ACP has no `error` stop reason: a failed turn is a JSON-RPC error.
      throw toRequestError(
        result.error ?? new AgentSessionsError(ErrorCode.RUNTIME_FAILED, 'the turn failed'),
        sessionId,
      );
    }
    return { stopReason: result.stopReason };
  }

  async #askPermission(
    sessionId: string,
    event: SessionEventOf<'tool_call_confirmation'>,
    stream: TurnStream,
    signal: AbortSignal,
    client: AgentContext,
  ): Promise<void> {
    const { toolCall, confirmationId } = event;
    let outcome: RequestPermissionOutcome;
    try {
      const response = await client.request(
        methods.client.session.requestPermission,
        permissionRequest(sessionId, toolCall, this.#options.describeToolCall),
        { cancellationSignal: signal, stopWaitingOnCancel: true },
      );
      outcome = response.outcome;
    } catch (error) {
      if (signal.aborted) return;
      this.#logger.warn('the ACP client failed a permission request; the tool call is rejected', {
        sessionId,
        toolCallId: toolCall.id,
        error,
      });
      outcome = { outcome: 'selected', optionId: 'reject_once' };
    }
    if (signal.aborted) return;
    if (outcome.outcome === 'cancelled') {
      stream.cancel(new Error('the client cancelled the permission request'));
      return;
    }
    const kind = permissionOptions(toolCall).find((option) => option.optionId === outcome.optionId)?.kind;
    try {
      switch (kind) {
        case 'allow_once':
          await this.#manager.resumeSession(sessionId, { confirmation: 'approve', confirmationId });
          break;
        case 'allow_always':
          try {
            await this.#manager.resumeSession(sessionId, { confirmation: 'approve-tool', confirmationId });
          } catch (error) {
            if (AgentSessionsError.hasCode(error, ErrorCode.NOTHING_PENDING)) throw error;
            this.#logger.warn('remembering an always-allow failed; this call is approved once', {
              sessionId,
              error,
            });
            await this.#manager.resumeSession(sessionId, { confirmation: 'approve', confirmationId });
          }
          break;
        case 'reject_always':
          await this.#denyTool(sessionId, toolCall.name);
          await this.#manager.resumeSession(sessionId, {
            confirmation: 'reject',
            confirmationId,
            reason: `The user rejected ${toolCall.name} and does not allow it in this session.`,
          });
          break;
        default:
          if (kind === undefined) {
            this.#logger.warn(
              'the ACP client chose an unknown permission option; the tool call is rejected',
              {
                sessionId,
                optionId: outcome.optionId,
              },
            );
          }
          await this.#manager.resumeSession(sessionId, {
            confirmation: 'reject',
            confirmationId,
            reason: 'The user rejected this tool call.',
          });
      }
    } catch (error) {
      // Answered meanwhile (another host, a policy change) or the turn ended: nothing waits.
      if (AgentSessionsError.hasCode(error, ErrorCode.NOTHING_PENDING)) return;
      this.#logger.error('answering a tool confirmation failed; the turn is cancelled', { sessionId, error });
      stream.cancel(error);
    }
  }

  /** Adds a `deny` pattern for the tool (kept if already there). */
  async #denyTool(sessionId: string, toolName: string): Promise<void> {
    try {
      const { permissions } = await this.#manager.getSession(sessionId);
      if (permissions.deny.includes(toolName)) return;
      await this.#manager.updateSessionPermissions(sessionId, {
        ...permissions,
        deny: [...permissions.deny, toolName],
      });
    } catch (error) {
      this.#logger.warn('remembering an always-reject failed; this call is rejected once', {
        sessionId,
        error,
      });
    }
  }

  async #elicit(
    sessionId: string,
    event: SessionEventOf<'elicitation_request'>,
    signal: AbortSignal,
    client: AgentContext,
  ): Promise<void> {
    const supported =
      event.mode === 'url'
        ? this.#clientCapabilities.elicitation?.url != null && event.url !== undefined
        : this.#clientCapabilities.elicitation?.form != null;
    let answer: { action: 'accept' | 'decline' | 'cancel'; content?: unknown } = { action: 'cancel' };
    if (supported) {
      try {
        const response = await client.request(
          methods.client.elicitation.create,
          event.mode === 'url'
            ? {
                mode: 'url',
                sessionId,
                elicitationId: event.elicitationId,
                url: event.url ?? '',
                message: event.message,
              }
            : {
                mode: 'form',
                sessionId,
                message: event.message,
                requestedSchema: (event.schema ?? { type: 'object', properties: {} }) as never,
              },
          { cancellationSignal: signal, stopWaitingOnCancel: true },
        );
        if (response.action === 'accept') {
          answer = { action: 'accept', ...('content' in response ? { content: response.content } : {}) };
        } else if (response.action === 'decline') answer = { action: 'decline' };
      } catch (error) {
        if (signal.aborted) return;
        this.#logger.warn('the ACP client failed an elicitation; it is cancelled', { sessionId, error });
      }
    }
    if (signal.aborted) return;
    try {
      await this.#manager.resumeElicitation(sessionId, { ...answer, elicitationId: event.elicitationId });
    } catch (error) {
      if (!AgentSessionsError.hasCode(error, ErrorCode.NOTHING_PENDING)) {
        this.#logger.error('answering an elicitation failed', { sessionId, error });
      }
    }
  }
}
