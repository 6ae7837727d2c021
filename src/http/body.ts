/** Request bodies: JSON only, within a size limit, validated with a zod schema. */
import type * as z from 'zod';
import { InvalidArgumentError, invalidArgument } from '../errors.js';
import { HttpErrorCode, HttpFailure } from './status.js';

/** The default `maxBodyBytes`: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

function isJsonType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * How deep a request's JSON may nest. Far beyond any real body; deeper values overflow the stack
 * of recursive code further on (copies, JSON.stringify), which would answer 500 and not 400.
 */
export const MAX_JSON_DEPTH = 256;

/** True when `text` (JSON) nests arrays and objects deeper than `max`. Strings are skipped. */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index++; // a backslash escapes the next character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > max) return true;
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
  return false;
}

const tooLarge = (limit: number) =>
  new HttpFailure(HttpErrorCode.PAYLOAD_TOO_LARGE, `request body exceeds ${limit} bytes`);

/** Reads the body as text, refusing more than `limit` bytes without reading past it. */
async function readText(request: Request, limit: number): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let size = 0;
  let result = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      result += decoder.decode(value, { stream: true });
    }
    return result + decoder.decode();
  } catch (error) {
    if (error instanceof HttpFailure) throw error;
    if (error instanceof TypeError) {
      throw new InvalidArgumentError('request body is not valid UTF-8', {
        issues: [{ path: [], message: 'invalid UTF-8' }],
      });
    }
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * Reads and validates a JSON body. An empty body counts as `{}` when `optional`; a body with another
 * content type is 415, a larger one 413, malformed JSON, JSON nested deeper than
 * {@link MAX_JSON_DEPTH} and invalid fields 400 (`INVALID_ARGUMENT` with zod's issues).
 */
export async function readJsonBody<S extends z.ZodType>(
  request: Request,
  schema: S,
  options: { limit: number; optional: boolean },
): Promise<z.output<S>> {
  const contentType = request.headers.get('content-type');
  const text = await readText(request, options.limit);
  let value: unknown;
  if (text.trim() === '') {
    if (!options.optional) {
      throw new InvalidArgumentError('request body required: expected a JSON object', {
        issues: [{ path: [], message: 'expected a JSON object' }],
      });
    }
    value = {};
  } else {
    if (contentType === null || !isJsonType(contentType)) {
      throw new HttpFailure(
        HttpErrorCode.UNSUPPORTED_MEDIA_TYPE,
        `expected content-type application/json, got ${JSON.stringify((contentType ?? '').slice(0, 100))}`,
      );
    }
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
      throw new InvalidArgumentError(`request body nests deeper than ${MAX_JSON_DEPTH} levels`, {
        issues: [{ path: [], message: `nested deeper than ${MAX_JSON_DEPTH} levels` }],
      });
    }
    try {
      value = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError('request body is not valid JSON', {
        issues: [{ path: [], message: 'malformed JSON' }],
      });
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidArgument('request body', parsed.error);
  return parsed.data;
}

/** Validates the query string against a strict schema (unknown parameters are 400). */
export function parseQuery<S extends z.ZodType>(url: URL, schema: S): z.output<S> {
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (Object.hasOwn(query, key)) {
      throw new InvalidArgumentError(`query parameter ${JSON.stringify(key.slice(0, 100))} is repeated`, {
        issues: [{ path: [key], message: 'repeated' }],
      });
    }
    query[key] = value;
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw invalidArgument('query', parsed.error);
  return parsed.data;
}
