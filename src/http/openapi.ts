/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the route table and the same zod
 * schemas the handler validates with (zod 4's JSON Schema output, draft 2020-12, which OpenAPI 3.1
 * uses). `docs/openapi.json` is this document for the default `basePath`; a test keeps it in sync.
 */
import * as z from 'zod';
import {
  ExportBundleSchema,
  JsonObjectSchema,
  JsonValueSchema,
  MessageSchema,
  SessionSchema,
  StringRecordSchema,
  SummaryItemSchema,
} from '../schemas.js';
import * as bodies from './bodies.js';
import { ROUTES, type RouteDefinition } from './routes.js';
import { ERROR_STATUS } from './status.js';

/** Named schemas, referenced as `#/components/schemas/<name>`. */
const COMPONENTS: Record<string, z.ZodType> = {
  Error: bodies.ErrorBodySchema,
  Health: bodies.HealthSchema,
  Session: SessionSchema,
  Page: bodies.PageSchema,
  Message: MessageSchema,
  SummaryItem: SummaryItemSchema,
  ExportBundle: ExportBundleSchema,
  SessionSnapshot: bodies.SessionSnapshotSchema,
  QueueStatus: bodies.QueueStatusSchema,
  AvailableModels: bodies.AvailableModelsSchema,
  TurnResult: bodies.TurnResultSchema,
  FollowUpResult: bodies.FollowUpResultSchema,
  BatchDeleteResult: bodies.BatchDeleteResultSchema,
  ImportResult: bodies.ImportResultSchema,
  DeleteResult: bodies.DeleteResultSchema,
  CancelResult: bodies.CancelResultSchema,
  SafetyPolicyResult: bodies.SafetyPolicyResultSchema,
  TitleResult: bodies.TitleResultSchema,
  CreateSessionBody: bodies.CreateSessionBodySchema,
  RunBody: bodies.RunBodySchema,
  AgentRunBody: bodies.AgentRunBodySchema,
  SteerBody: bodies.SteerBodySchema,
  FollowUpBody: bodies.FollowUpBodySchema,
  ResumeBody: bodies.ResumeBodySchema,
  ElicitationBody: bodies.ElicitationBodySchema,
  CancelBody: bodies.CancelBodySchema,
  TitleBody: bodies.TitleBodySchema,
  StarredBody: bodies.StarredBodySchema,
  PermissionsBody: bodies.PermissionsBodySchema,
  SafetyPolicyBody: bodies.SafetyPolicyBodySchema,
  ModelBody: bodies.ModelBodySchema,
  AddMessageBody: bodies.AddMessageBodySchema,
  UpdateMessageBody: bodies.UpdateMessageBodySchema,
  SummaryBody: bodies.SummaryBodySchema,
  ForkBody: bodies.ForkBodySchema,
  IdsBody: bodies.IdsBodySchema,
  ImportBody: bodies.ImportBodySchema,
  WaitBody: bodies.WaitBodySchema,
};

type JsonSchema = Record<string, unknown>;

/** The library's custom schemas (kept as given, so zod cannot describe them): their JSON Schema. */
function unrepresentable(context: { zodSchema: unknown }): JsonSchema | 'any' {
  if (context.zodSchema === JsonObjectSchema) return { type: 'object', description: 'A JSON object' };
  if (context.zodSchema === StringRecordSchema) {
    return { type: 'object', additionalProperties: { type: 'string' } };
  }
  if (context.zodSchema === JsonValueSchema) return { description: 'Any JSON value' };
  return 'any';
}

function componentName(schema: z.ZodType): string | undefined {
  for (const [name, candidate] of Object.entries(COMPONENTS)) if (candidate === schema) return name;
  return undefined;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function components(io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [name, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id: name });
  const result = z.toJSONSchema(registry, {
    io,
    unrepresentable: unrepresentable as never,
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, JsonSchema> };
  for (const schema of Object.values(result.schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return result.schemas;
}

function queryParameters(route: RouteDefinition): JsonSchema[] {
  const schema = route.query as z.ZodObject | undefined;
  if (!schema?.shape) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const fieldSchema = z.toJSONSchema(field as z.ZodType, {
      io: 'input',
      unrepresentable: 'any',
    }) as JsonSchema;
    delete fieldSchema.$schema;
    return { name, in: 'query', required: false, schema: fieldSchema };
  });
}

function operation(route: RouteDefinition): JsonSchema {
  const pathParameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema:
      name === 'id'
        ? { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' }
        : { type: 'string', maxLength: 256 },
  }));
  const headerParameters = (route.headers ?? []).map((header) => ({
    name: header.name,
    in: 'header',
    required: false,
    description: header.description,
    schema: { type: 'string' },
  }));
  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    const content = response.sse
      ? {
          'text/event-stream': {
            schema: {
              type: 'string',
              description:
                'SSE: `id: <seq>`, `event: <type>`, `data: <SessionEvent JSON>`; control messages `turn_result` (a TurnResult), `lagged` (`{ lastSeq }`), `stream_error` (an Error)',
            },
          },
        }
      : response.schema
        ? { 'application/json': { schema: ref(response.schema) } }
        : undefined;
    responses[status] = { description: response.description, ...(content ? { content } : {}) };
  }
  if (!route.public)
    responses['401'] ??= {
      description: 'Missing or invalid credentials',
      content: { 'application/json': { schema: ref('Error') } },
    };
  const bodyName = route.body ? componentName(route.body) : undefined;
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    ...(route.public ? { security: [] } : {}),
    parameters: [...pathParameters, ...queryParameters(route), ...headerParameters],
    ...(bodyName
      ? {
          requestBody: {
            required: !route.bodyOptional,
            content: { 'application/json': { schema: ref(bodyName) } },
          },
        }
      : {}),
    responses,
  };
}

/** Options of {@link createOpenApiDocument}. */
export interface OpenApiOptions {
  /** Where the API is mounted. @default '/api' */
  basePath?: string;
  /** `info.title`. @default 'agent-sessions' */
  title?: string;
  /** `info.version`. @default '1' */
  version?: string;
}

/** The OpenAPI 3.1 document of the routes, as a plain JSON object. */
export function createOpenApiDocument(options: OpenApiOptions = {}): JsonSchema {
  const basePath = options.basePath ?? '/api';
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of ROUTES) {
    const path = route.root ? route.path : `${basePath}${route.path}`;
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  const input = components('input');
  const output = components('output');
  return {
    openapi: '3.1.0',
    info: {
      title: options.title ?? 'agent-sessions',
      version: options.version ?? '1',
      description: `AI-agent chat sessions over HTTP. Errors are \`{ code, message, details? }\`; statuses by code: ${Object.entries(
        ERROR_STATUS,
      )
        .map(([code, status]) => `${code} ${status}`)
        .join(', ')}.`,
    },
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      // Request bodies are described as they are accepted, responses as they are produced.
      schemas: Object.fromEntries(
        Object.keys(COMPONENTS).map((name) => [name, (name.endsWith('Body') ? input : output)[name]!]),
      ),
    },
  };
}
