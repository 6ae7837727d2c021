// agent-sessions/http: a SessionManager over HTTP and SSE, as a web-standard handler.
export { type AuthOptions, bearerToken, type Principal, timingSafeEqual } from './auth.js';
export * from './bodies.js';
export { DEFAULT_MAX_BODY_BYTES, MAX_JSON_DEPTH } from './body.js';
export type { CorsOptions } from './cors.js';
export { createHttpHandler, type HttpHandler, type HttpHandlerOptions } from './handler.js';
export { toNodeListener, toWebRequest, writeWebResponse } from './node.js';
export { createOpenApiDocument, type OpenApiOptions } from './openapi.js';
export { TURN_ID_HEADER } from './routes.js';
export { formatControl, formatEvent, SSE_HEADERS, SseControl } from './sse.js';
export {
  describeError,
  ERROR_STATUS,
  type ErrorBody,
  HttpErrorCode,
  QUEUE_FULL_RETRY_AFTER_SECONDS,
  type WireErrorCode,
} from './status.js';
