/**
 * The route table of `agent-sessions/http`, with docker-agent's `pkg/server` routes as the map
 * (its paths kept where they are sensible). Each route declares its query and body schemas (the
 * handler validates with them before calling the manager) and its responses (the OpenAPI document
 * is generated from this table). Paths are relative to the handler's `basePath` (default `/api`),
 * except `/health` and `/ready`.
 */
import type * as z from 'zod';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SessionManager } from '../manager/session-manager.js';
import type {
  MessageInput,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  SessionTemplate,
} from '../manager/types.js';
import type { Message } from '../schemas.js';
import type { ListOptions } from '../store.js';
import type { Principal } from './auth.js';
import {
  AddMessageBodySchema,
  AgentRunBodySchema,
  CancelBodySchema,
  CreateSessionBodySchema,
  DeleteQuerySchema,
  ElicitationBodySchema,
  EventsQuerySchema,
  FollowUpBodySchema,
  ForkBodySchema,
  IdsBodySchema,
  ImportBodySchema,
  ListQuerySchema,
  ModelBodySchema,
  PermissionsBodySchema,
  ResumeBodySchema,
  RunBodySchema,
  SafetyPolicyBodySchema,
  StarredBodySchema,
  SteerBodySchema,
  SummaryBodySchema,
  TitleBodySchema,
  UpdateMessageBodySchema,
  WaitBodySchema,
} from './bodies.js';
import { type SseOptions, sseResponse } from './sse.js';
import { describeError, HttpErrorCode, HttpFailure } from './status.js';
import { sessionEventSource, turnEventSource } from './streams.js';
import type { TurnRegistry } from './turns.js';

/** The header carrying a new turn's id on `POST /sessions/{id}/run`. */
export const TURN_ID_HEADER = 'agent-sessions-turn-id';

/** What a route's handler gets. */
export interface RouteContext {
  manager: SessionManager;
  request: Request;
  url: URL;
  /** Path parameters, decoded; `id` is a valid session id the principal may use. */
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  principal: Principal | undefined;
  turns: TurnRegistry;
  sse: SseOptions;
  onDisconnect: 'detach' | 'cancel';
  /** Throws `SESSION_NOT_FOUND` unless the session exists and the principal may use it. */
  access(id: string): Promise<void>;
  /** Remembers that a session is owned by the principal (just created). */
  remember(id: string, owner: string | undefined): void;
  /** The OpenAPI document. */
  openapi(): unknown;
  /** Where errors whose response says nothing (`INTERNAL`, a store's failure) are logged. */
  logger: Logger;
}

/** A documented response of a route. */
export interface RouteResponse {
  description: string;
  /** The component schema of the JSON body (see openapi.ts). */
  schema?: string;
  /** The body is an SSE stream. */
  sse?: boolean;
}

/** One route. */
export interface RouteDefinition {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI-style path, relative to `basePath` unless `root`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: 'sessions' | 'turns' | 'history' | 'settings' | 'service';
  /** The docker-agent route this one ports, for the porting table. */
  dockerAgent?: string;
  query?: z.ZodType;
  body?: z.ZodType;
  /** An empty body counts as `{}`. */
  bodyOptional?: boolean;
  /** Request headers the route reads. */
  headers?: Array<{ name: string; description: string }>;
  responses: Record<number, RouteResponse>;
  /** Served without authentication. */
  public?: boolean;
  /** Not under `basePath`. */
  root?: boolean;
  handle(context: RouteContext): Promise<Response>;
}

/** A JSON response. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

const noContent = () => new Response(null, { status: 204 });

/** `Last-Event-ID` wins over `?since=` (EventSource resends the original URL with the header). */
function resumePosition(context: RouteContext): number | undefined {
  const header = context.request.headers.get('last-event-id');
  if (header !== null && header.trim() !== '') {
    if (!/^\d{1,15}$/.test(header.trim())) {
      throw new AgentSessionsError(
        ErrorCode.INVALID_ARGUMENT,
        'invalid Last-Event-ID: expected an event seq',
      );
    }
    return Number(header.trim());
  }
  return (context.query as { since?: number }).since;
}

function runTurnResponse(context: RouteContext, input: RunInput): Promise<Response> {
  const id = context.params.id!;
  return context.manager.runSession(id, input, { onDetach: 'continue' }).then(async (stream) => {
    const entry = context.turns.start(id, stream);
    const first = await entry.firstSeq;
    const since = first === undefined ? entry.finalSeq : first - 1;
    return sseResponse(turnEventSource(context.manager, entry, since, context.onDisconnect), {
      ...context.sse,
      headers: { [TURN_ID_HEADER]: stream.turnId },
    });
  });
}

function ownerOf(context: RouteContext): { owner?: string } {
  return context.principal === undefined ? {} : { owner: context.principal.id };
}

const sessionNotFound = { description: 'No such session (or not the principal’s)', schema: 'Error' };
const badRequest = { description: 'Invalid path, query or body', schema: 'Error' };
const busy = { description: 'A turn is running (`SESSION_BUSY`)', schema: 'Error' };

/** Every route, in matching order (literal paths before parameters). */
export const ROUTES: readonly RouteDefinition[] = [
  {
    method: 'GET',
    path: '/health',
    root: true,
    public: true,
    operationId: 'health',
    tag: 'service',
    summary: 'Liveness: the process answers.',
    dockerAgent: 'GET /health',
    responses: { 200: { description: 'Alive', schema: 'Health' } },
    handle: async () => json(200, { status: 'ok' }),
  },
  {
    method: 'GET',
    path: '/ready',
    root: true,
    public: true,
    operationId: 'ready',
    tag: 'service',
    summary: 'Readiness: the manager is open and its store answers a one-session listing.',
    dockerAgent: 'GET /ready',
    responses: {
      200: { description: 'Ready', schema: 'Health' },
      503: { description: 'The store failed or the manager is closed', schema: 'Error' },
    },
    handle: async (context) => {
      try {
        await context.manager.listSessions({ limit: 1 });
      } catch (error) {
        const { body, opaque } = describeError(error);
        if (opaque) context.logger.error('agent-sessions/http: the store is not ready', { error });
        return json(503, body);
      }
      return json(200, { status: 'ready' });
    },
  },
  {
    method: 'GET',
    path: '/ping',
    operationId: 'ping',
    tag: 'service',
    summary: 'Checks that the API answers (and that the credentials are accepted).',
    dockerAgent: 'GET /api/ping',
    responses: { 200: { description: 'OK', schema: 'Health' } },
    handle: async () => json(200, { status: 'ok' }),
  },
  {
    method: 'GET',
    path: '/openapi.json',
    operationId: 'openapi',
    tag: 'service',
    summary: 'This API as an OpenAPI 3.1 document.',
    responses: { 200: { description: 'The document' } },
    handle: async (context) => json(200, context.openapi()),
  },
  {
    method: 'GET',
    path: '/sessions',
    operationId: 'listSessions',
    tag: 'sessions',
    summary: 'Session summaries, newest first, paged (only the principal’s own).',
    dockerAgent: 'GET /api/sessions',
    query: ListQuerySchema,
    responses: { 200: { description: 'A page', schema: 'Page' }, 400: badRequest },
    handle: async (context) => {
      const query = context.query as z.output<typeof ListQuerySchema>;
      const options = { ...query, ...ownerOf(context) } as ListOptions;
      return json(200, await context.manager.listSessions(options));
    },
  },
  {
    method: 'POST',
    path: '/sessions',
    operationId: 'createSession',
    tag: 'sessions',
    summary: 'Creates a session (owned by the principal).',
    dockerAgent: 'POST /api/sessions',
    body: CreateSessionBodySchema,
    bodyOptional: true,
    responses: {
      201: { description: 'The new session', schema: 'Session' },
      400: badRequest,
      409: { description: 'The id is taken (`SESSION_EXISTS`)', schema: 'Error' },
    },
    handle: async (context) => {
      const template = { ...(context.body as object), ...ownerOf(context) } as SessionTemplate;
      const session = await context.manager.createSession(template);
      context.remember(session.id, context.principal?.id);
      return json(201, session, { location: `sessions/${session.id}` });
    },
  },
  {
    method: 'POST',
    path: '/sessions/import',
    operationId: 'importSessions',
    tag: 'sessions',
    summary:
      'Imports an export bundle, keeping ids and every field (the principal becomes the owner). The whole bundle is validated before anything is written.',
    body: ImportBodySchema,
    responses: {
      200: { description: 'What was imported, skipped and replaced', schema: 'ImportResult' },
      400: badRequest,
      409: { description: 'An id exists (`onConflict: "error"`, or owned by someone else)', schema: 'Error' },
    },
    handle: async (context) => {
      const { bundle, onConflict } = context.body as z.output<typeof ImportBodySchema>;
      if (context.principal !== undefined) {
        for (const session of bundle.sessions) {
          if (!(await isUsable(context, session.id))) {
            throw new AgentSessionsError(
              ErrorCode.SESSION_EXISTS,
              `import refused: session ${JSON.stringify(session.id)} already exists`,
            );
          }
          Object.assign(session, { owner: context.principal.id });
        }
      }
      const result = await context.manager.importSessions(bundle, { onConflict });
      for (const id of [...result.imported]) context.remember(id, context.principal?.id);
      return json(200, result);
    },
  },
  {
    method: 'POST',
    path: '/sessions/batch/delete',
    operationId: 'deleteSessions',
    tag: 'sessions',
    summary: 'Deletes several sessions; never fails as a whole.',
    dockerAgent: 'POST /api/sessions/batch/delete',
    body: IdsBodySchema,
    responses: {
      200: { description: 'Deleted and failed ids', schema: 'BatchDeleteResult' },
      400: badRequest,
    },
    handle: async (context) => {
      const { ids } = context.body as z.output<typeof IdsBodySchema>;
      const allowed: string[] = [];
      const failed: Array<{ id: string; error: unknown }> = [];
      for (const id of ids) {
        try {
          await context.access(id);
          allowed.push(id);
        } catch (error) {
          failed.push({ id, error: describeError(error).body });
        }
      }
      const result = await context.manager.deleteSessions(allowed);
      return json(200, {
        deleted: result.deleted,
        failed: [
          ...failed,
          ...result.failed.map(({ id, error }) => ({ id, error: describeError(error).body })),
        ],
      });
    },
  },
  {
    method: 'POST',
    path: '/sessions/batch/export',
    operationId: 'exportSessions',
    tag: 'sessions',
    summary: 'Full records of the sessions as a version-1 bundle.',
    dockerAgent: 'POST /api/sessions/batch/export',
    body: IdsBodySchema,
    responses: {
      200: { description: 'The bundle', schema: 'ExportBundle' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => {
      const { ids } = context.body as z.output<typeof IdsBodySchema>;
      for (const id of ids) await context.access(id);
      return json(200, await context.manager.exportSessions(ids));
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}',
    operationId: 'getSession',
    tag: 'sessions',
    summary: 'The whole session, items included.',
    dockerAgent: 'GET /api/sessions/:id',
    responses: {
      200: { description: 'The session', schema: 'Session' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => json(200, await context.manager.getSession(context.params.id!)),
  },
  {
    method: 'DELETE',
    path: '/sessions/{id}',
    operationId: 'deleteSession',
    tag: 'sessions',
    summary:
      'Deletes a session: cancels its turn, ends its event streams with `session_exited`. With `wait=true`, waits up to `timeout` ms (default 10 000) for the turn to stop.',
    dockerAgent: 'DELETE /api/sessions/:id',
    query: DeleteQuerySchema,
    responses: {
      200: { description: 'Deleted (and stopped)', schema: 'DeleteResult' },
      202: {
        description: 'Deleted; the turn was still stopping when `timeout` ran out',
        schema: 'DeleteResult',
      },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => {
      const id = context.params.id!;
      const query = context.query as z.output<typeof DeleteQuerySchema>;
      await context.manager.deleteSession(id);
      if (query.wait) {
        try {
          await context.manager.waitStopped(id, { timeoutMs: query.timeout ?? 10_000 });
        } catch (error) {
          if (AgentSessionsError.hasCode(error, ErrorCode.TIMEOUT))
            return json(202, { deleted: true, stopped: false });
          throw error;
        }
      }
      return json(200, { deleted: true, stopped: true });
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}/status',
    operationId: 'getSessionSnapshot',
    tag: 'sessions',
    summary:
      'What a reconnecting client needs: the session, whether a turn runs, the last event seq (tail `/events?since=` it), pending confirmations and elicitations, queues.',
    dockerAgent: 'GET /api/sessions/:id/status',
    responses: {
      200: { description: 'The snapshot', schema: 'SessionSnapshot' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => json(200, await context.manager.getSessionSnapshot(context.params.id!)),
  },
  {
    method: 'GET',
    path: '/sessions/{id}/queue',
    operationId: 'getQueueStatus',
    tag: 'turns',
    summary: 'How many steered messages and follow-ups wait, and what is pending.',
    dockerAgent: 'GET /api/sessions/:id/queue',
    responses: {
      200: { description: 'Counts', schema: 'QueueStatus' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => {
      const snapshot = await context.manager.getSessionSnapshot(context.params.id!);
      return json(200, {
        streaming: snapshot.streaming,
        steer: snapshot.queues.steer.length,
        followUp: snapshot.queues.followUp.length,
        pendingConfirmations: snapshot.pending.confirmations.length,
        pendingElicitations: snapshot.pending.elicitations.length,
      });
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}/recovery',
    operationId: 'exportSession',
    tag: 'sessions',
    summary: 'The session as a version-1 export bundle (docker-agent’s recovery data).',
    dockerAgent: 'GET /api/sessions/:id/recovery',
    responses: {
      200: { description: 'The bundle', schema: 'ExportBundle' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => json(200, await context.manager.exportSessions([context.params.id!])),
  },
  {
    method: 'POST',
    path: '/sessions/{id}/run',
    operationId: 'runSession',
    tag: 'turns',
    summary:
      'Starts a turn and streams it as SSE: its events (and those of the steered and follow-up turns after it), then `turn_result`. The `agent-sessions-turn-id` header names the turn; resume a dropped stream at `/sessions/{id}/turns/{turnId}/events`.',
    dockerAgent: 'POST /api/sessions/:id/agent/:agent',
    body: RunBodySchema,
    responses: {
      200: { description: 'The turn’s events', sse: true },
      400: badRequest,
      404: sessionNotFound,
      409: busy,
      422: { description: 'Unknown source, or model switching not supported', schema: 'Error' },
    },
    handle: (context) => {
      const body = context.body as z.output<typeof RunBodySchema>;
      return runTurnResponse(context, body as RunInput);
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/agent/{agent}',
    operationId: 'runAgent',
    tag: 'turns',
    summary: 'docker-agent’s run route: `POST /sessions/{id}/run` with `source` = `{agent}`.',
    dockerAgent: 'POST /api/sessions/:id/agent/:agent',
    body: AgentRunBodySchema,
    responses: {
      200: { description: 'The turn’s events', sse: true },
      400: badRequest,
      404: sessionNotFound,
      409: busy,
    },
    handle: (context) => {
      const body = context.body as z.output<typeof AgentRunBodySchema>;
      return runTurnResponse(context, { ...(body as RunInput), source: context.params.agent! });
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/agent/{agent}/{agentName}',
    operationId: 'runAgentNamed',
    tag: 'turns',
    summary: 'docker-agent’s run route with an agent name: `source` = `{agent}`, `agent` = `{agentName}`.',
    dockerAgent: 'POST /api/sessions/:id/agent/:agent/:agent_name',
    body: AgentRunBodySchema,
    responses: {
      200: { description: 'The turn’s events', sse: true },
      400: badRequest,
      404: sessionNotFound,
      409: busy,
    },
    handle: (context) => {
      const body = context.body as z.output<typeof AgentRunBodySchema>;
      return runTurnResponse(context, {
        ...(body as RunInput),
        source: context.params.agent!,
        agent: context.params.agentName!,
      });
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}/turns/{turnId}/events',
    operationId: 'resumeTurn',
    tag: 'turns',
    summary:
      'Resumes a turn stream after a dropped connection: its events after `Last-Event-ID` (or `since`), then `turn_result`. `TURN_NOT_FOUND` when this server does not know the turn (it ended long ago, or the server restarted).',
    query: EventsQuerySchema,
    headers: [{ name: 'Last-Event-ID', description: 'The seq of the last event received' }],
    responses: {
      200: { description: 'The rest of the turn’s events', sse: true },
      400: badRequest,
      404: { description: 'Unknown session or turn', schema: 'Error' },
    },
    handle: async (context) => {
      const entry = context.turns.get(context.params.id!, context.params.turnId!);
      if (!entry) {
        throw new HttpFailure(
          HttpErrorCode.TURN_NOT_FOUND,
          `turn ${JSON.stringify(context.params.turnId!.slice(0, 200))} is not known to this server`,
        );
      }
      // Never before the turn's start: events of earlier turns are not this turn's.
      const start = ((await entry.firstSeq) ?? entry.finalSeq + 1) - 1;
      const since = Math.max(resumePosition(context) ?? start, start);
      return sseResponse(turnEventSource(context.manager, entry, since, context.onDisconnect), {
        ...context.sse,
        headers: { [TURN_ID_HEADER]: entry.turnId },
      });
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/turns/{turnId}/cancel',
    operationId: 'cancelTurnStream',
    tag: 'turns',
    summary: 'Cancels a turn stream started over HTTP (its running turn and its queued follow-ups).',
    body: CancelBodySchema,
    bodyOptional: true,
    responses: {
      200: { description: 'Whether it was still running', schema: 'CancelResult' },
      404: { description: 'Unknown session or turn', schema: 'Error' },
    },
    handle: async (context) => {
      const entry = context.turns.get(context.params.id!, context.params.turnId!);
      if (!entry) throw new HttpFailure(HttpErrorCode.TURN_NOT_FOUND, 'turn is not known to this server');
      const running = entry.result === undefined;
      if (running) entry.stream.cancel((context.body as { reason?: string }).reason);
      return json(200, { cancelled: running });
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/cancel',
    operationId: 'cancelTurn',
    tag: 'turns',
    summary: 'Cancels the running turn (stop reason `cancelled`); `cancelled: false` when none runs.',
    body: CancelBodySchema,
    bodyOptional: true,
    responses: {
      200: { description: 'Whether a turn was running', schema: 'CancelResult' },
      404: sessionNotFound,
    },
    handle: async (context) => {
      const reason = (context.body as { reason?: string }).reason;
      return json(200, { cancelled: await context.manager.cancelTurn(context.params.id!, reason) });
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}/events',
    operationId: 'streamEvents',
    tag: 'turns',
    summary:
      'The session’s event log as SSE: the kept events after `Last-Event-ID` (or `since`; all when neither), a `gap` first if some are gone, then live events, until `session_exited`. Ends with `lagged` when the reader falls `eventLogCapacity` behind.',
    dockerAgent: 'GET /api/sessions/:id/events',
    query: EventsQuerySchema,
    headers: [{ name: 'Last-Event-ID', description: 'The seq of the last event received' }],
    responses: { 200: { description: 'Events', sse: true }, 400: badRequest, 404: sessionNotFound },
    handle: async (context) => {
      const id = context.params.id!;
      // streamEvents reports an unknown session only on its first next(), which for a known one
      // waits for an event: check first, so the client gets a 404 or its headers at once.
      if (context.principal === undefined) await context.manager.getSession(id);
      const since = resumePosition(context);
      return sseResponse(sessionEventSource(context.manager, id, since), context.sse);
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/resume',
    operationId: 'resumeSession',
    tag: 'turns',
    summary: 'Answers a pending `tool_call_confirmation`: approve, approve-tool, approve-session or reject.',
    dockerAgent: 'POST /api/sessions/:id/resume',
    body: ResumeBodySchema,
    responses: {
      204: { description: 'Answered' },
      400: badRequest,
      404: sessionNotFound,
      409: { description: 'Nothing pending (`NOTHING_PENDING`)', schema: 'Error' },
    },
    handle: async (context) => {
      const body = context.body as ResumeInput;
      await context.manager.resumeSession(context.params.id!, body);
      return noContent();
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/elicitation',
    operationId: 'resumeElicitation',
    tag: 'turns',
    summary: 'Answers a pending `elicitation_request`: accept (with content), decline or cancel.',
    dockerAgent: 'POST /api/sessions/:id/elicitation',
    body: ElicitationBodySchema,
    responses: {
      204: { description: 'Answered' },
      400: badRequest,
      404: sessionNotFound,
      409: { description: 'Nothing pending (`NOTHING_PENDING`)', schema: 'Error' },
    },
    handle: async (context) => {
      const body = context.body as ResumeElicitationInput;
      await context.manager.resumeElicitation(context.params.id!, body);
      return noContent();
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/steer',
    operationId: 'steerSession',
    tag: 'turns',
    summary: 'Queues messages for the running turn (the runtime takes them at a safe point).',
    dockerAgent: 'POST /api/sessions/:id/steer',
    body: SteerBodySchema,
    responses: {
      202: { description: 'Queued', schema: 'FollowUpResult' },
      400: badRequest,
      404: sessionNotFound,
      409: { description: 'No turn runs (`SESSION_NOT_RUNNING`)', schema: 'Error' },
      429: { description: 'The steer queue is full (`QUEUE_FULL`, with `Retry-After`)', schema: 'Error' },
    },
    handle: async (context) => {
      const body = context.body as z.output<typeof SteerBodySchema>;
      await context.manager.steerSession(context.params.id!, body.messages as MessageInput[]);
      return json(202, { status: 'queued' });
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/followup',
    operationId: 'followUpSession',
    tag: 'turns',
    summary:
      'Queues a whole turn after the running one, or starts it at once when idle (its events go to `/events`). A repeated `Idempotency-Key` delivers nothing.',
    dockerAgent: 'POST /api/sessions/:id/followup',
    body: FollowUpBodySchema,
    headers: [
      { name: 'Idempotency-Key', description: 'Deliver at most once per key (the last 256 per session)' },
    ],
    responses: {
      200: { description: 'A duplicate: nothing delivered', schema: 'FollowUpResult' },
      202: { description: 'Queued or started', schema: 'FollowUpResult' },
      400: badRequest,
      404: sessionNotFound,
      429: { description: 'The follow-up queue is full (`QUEUE_FULL`, with `Retry-After`)', schema: 'Error' },
    },
    handle: async (context) => {
      const body = context.body as z.output<typeof FollowUpBodySchema>;
      const header = context.request.headers.get('idempotency-key') ?? undefined;
      if (header !== undefined && body.idempotencyKey !== undefined && header !== body.idempotencyKey) {
        throw new AgentSessionsError(
          ErrorCode.INVALID_ARGUMENT,
          'the Idempotency-Key header and the body’s idempotencyKey differ',
        );
      }
      const key = header ?? body.idempotencyKey;
      if (key !== undefined && (key.length === 0 || key.length > 1024)) {
        throw new AgentSessionsError(
          ErrorCode.INVALID_ARGUMENT,
          'invalid Idempotency-Key: 1 to 1024 characters',
        );
      }
      const result = await context.manager.followUpSession(
        context.params.id!,
        body.messages as MessageInput[],
        key === undefined ? {} : { idempotencyKey: key },
      );
      return json(result.status === 'duplicate' ? 200 : 202, result);
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/wait',
    operationId: 'waitStopped',
    tag: 'turns',
    summary:
      'Resolves when the session’s turns and background work have fully stopped (`TIMEOUT` after `timeoutMs`).',
    body: WaitBodySchema,
    responses: {
      204: { description: 'Stopped' },
      400: badRequest,
      504: { description: 'Still running after `timeoutMs` (`TIMEOUT`)', schema: 'Error' },
    },
    handle: async (context) => {
      const { timeoutMs } = context.body as z.output<typeof WaitBodySchema>;
      await context.manager.waitStopped(context.params.id!, { timeoutMs });
      return noContent();
    },
  },
  {
    method: 'GET',
    path: '/sessions/{id}/models',
    operationId: 'getAvailableModels',
    tag: 'settings',
    summary: 'The runtime’s models for the agent in force, each marked `current`, then the custom refs used.',
    dockerAgent: 'GET /api/sessions/:id/models',
    responses: { 200: { description: 'Models', schema: 'AvailableModels' }, 404: sessionNotFound },
    handle: async (context) => json(200, await context.manager.getAvailableModels(context.params.id!)),
  },
  {
    method: 'PUT',
    path: '/sessions/{id}/model',
    operationId: 'setSessionModel',
    tag: 'settings',
    summary: 'Switches the current agent’s model (`null` clears the override).',
    body: ModelBodySchema,
    responses: {
      204: { description: 'Switched' },
      400: badRequest,
      404: sessionNotFound,
      422: { description: 'The runtime cannot switch models', schema: 'Error' },
    },
    handle: async (context) => {
      const { model } = context.body as z.output<typeof ModelBodySchema>;
      await context.manager.setSessionModel(context.params.id!, model ?? undefined);
      return noContent();
    },
  },
  {
    method: 'PATCH',
    path: '/sessions/{id}/title',
    operationId: 'updateSessionTitle',
    tag: 'settings',
    summary: 'Sets the title by hand (stops automatic titling; `""` clears it).',
    dockerAgent: 'PATCH /api/sessions/:id/title',
    body: TitleBodySchema,
    responses: {
      200: { description: 'The new title', schema: 'TitleResult' },
      400: badRequest,
      404: sessionNotFound,
    },
    handle: async (context) => {
      const { title } = context.body as z.output<typeof TitleBodySchema>;
      await context.manager.updateSessionTitle(context.params.id!, title);
      return json(200, { id: context.params.id!, title });
    },
  },
  {
    method: 'PATCH',
    path: '/sessions/{id}/starred',
    operationId: 'setSessionStarred',
    tag: 'settings',
    summary: 'Stars or unstars the session.',
    dockerAgent: 'PATCH /api/sessions/:id/starred',
    body: StarredBodySchema,
    responses: { 204: { description: 'Done' }, 400: badRequest, 404: sessionNotFound },
    handle: async (context) => {
      const { starred } = context.body as z.output<typeof StarredBodySchema>;
      await context.manager.setSessionStarred(context.params.id!, starred);
      return noContent();
    },
  },
  {
    method: 'PATCH',
    path: '/sessions/{id}/permissions',
    operationId: 'updateSessionPermissions',
    tag: 'settings',
    summary: 'Replaces the tool permission patterns (`allow`, `ask`, `deny`).',
    dockerAgent: 'PATCH /api/sessions/:id/permissions',
    body: PermissionsBodySchema,
    responses: { 204: { description: 'Done' }, 400: badRequest, 404: sessionNotFound },
    handle: async (context) => {
      const { permissions } = context.body as z.output<typeof PermissionsBodySchema>;
      await context.manager.updateSessionPermissions(context.params.id!, permissions);
      return noContent();
    },
  },
  {
    method: 'PATCH',
    path: '/sessions/{id}/safety-policy',
    operationId: 'setSessionSafetyPolicy',
    tag: 'settings',
    summary: 'Sets the tool safety policy.',
    body: SafetyPolicyBodySchema,
    responses: { 204: { description: 'Done' }, 400: badRequest, 404: sessionNotFound },
    handle: async (context) => {
      const { safetyPolicy } = context.body as z.output<typeof SafetyPolicyBodySchema>;
      await context.manager.setSessionSafetyPolicy(context.params.id!, safetyPolicy);
      return noContent();
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/tools/toggle',
    operationId: 'toggleToolApproval',
    tag: 'settings',
    summary: 'Toggles `autonomous` (approve every tool call) on and off; answers the new policy.',
    dockerAgent: 'POST /api/sessions/:id/tools/toggle',
    responses: { 200: { description: 'The new policy', schema: 'SafetyPolicyResult' }, 404: sessionNotFound },
    handle: async (context) =>
      json(200, { safetyPolicy: await context.manager.toggleToolApproval(context.params.id!) }),
  },
  {
    method: 'POST',
    path: '/sessions/{id}/messages',
    operationId: 'addMessage',
    tag: 'history',
    summary: 'Appends a message to the history (`SESSION_BUSY` during a turn).',
    dockerAgent: 'POST /api/sessions/:id/messages',
    body: AddMessageBodySchema,
    responses: {
      201: { description: 'The stored message', schema: 'Message' },
      400: badRequest,
      404: sessionNotFound,
      409: busy,
    },
    handle: async (context) => {
      const { message } = context.body as z.output<typeof AddMessageBodySchema>;
      return json(201, await context.manager.addMessage(context.params.id!, message as MessageInput));
    },
  },
  {
    method: 'PATCH',
    path: '/sessions/{id}/messages/{messageId}',
    operationId: 'updateMessage',
    tag: 'history',
    summary: 'Replaces a message (`SESSION_BUSY` during a turn, `MESSAGE_NOT_FOUND`).',
    dockerAgent: 'PATCH /api/sessions/:id/messages/:msg_id',
    body: UpdateMessageBodySchema,
    responses: {
      200: { description: 'The stored message', schema: 'Message' },
      400: badRequest,
      404: { description: 'No such session or message', schema: 'Error' },
      409: busy,
    },
    handle: async (context) => {
      const { message } = context.body as { message: Partial<Message> & { content: string } };
      return json(
        200,
        await context.manager.updateMessage(context.params.id!, context.params.messageId!, message),
      );
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/summaries',
    operationId: 'addSummary',
    tag: 'history',
    summary: 'Appends a compaction summary (`SESSION_BUSY` during a turn).',
    dockerAgent: 'POST /api/sessions/:id/summaries',
    body: SummaryBodySchema,
    responses: {
      201: { description: 'The stored summary', schema: 'SummaryItem' },
      400: badRequest,
      404: sessionNotFound,
      409: busy,
    },
    handle: async (context) => {
      const summary = context.body as Parameters<SessionManager['addSummary']>[1];
      return json(201, await context.manager.addSummary(context.params.id!, summary));
    },
  },
  {
    method: 'POST',
    path: '/sessions/{id}/fork',
    operationId: 'forkSession',
    tag: 'history',
    summary:
      'A new session holding the items before the `beforeUserMessage`-th user message (all when omitted).',
    body: ForkBodySchema,
    bodyOptional: true,
    responses: { 201: { description: 'The fork', schema: 'Session' }, 400: badRequest, 404: sessionNotFound },
    handle: async (context) => {
      const options = context.body as { beforeUserMessage?: number };
      const fork = await context.manager.forkSession(context.params.id!, options);
      context.remember(fork.id, context.principal?.id);
      return json(201, fork);
    },
  },
];

/** True when the session does not exist or belongs to the principal. */
async function isUsable(context: RouteContext, id: string): Promise<boolean> {
  try {
    await context.access(id);
    return true;
  } catch (error) {
    if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)) {
      try {
        await context.manager.getSession(id);
        return false;
      } catch (inner) {
        if (AgentSessionsError.hasCode(inner, ErrorCode.SESSION_NOT_FOUND)) return true;
        throw inner;
      }
    }
    throw error;
  }
}
