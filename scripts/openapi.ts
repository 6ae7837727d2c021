// `npm run openapi`: writes docs/openapi.json, the OpenAPI 3.1 document of agent-sessions/http for
// the default basePath (a test fails while the committed file differs from the generated one).
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOpenApiDocument } from '../src/http/index.js';

const file = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'openapi.json');
writeFileSync(file, `${JSON.stringify(createOpenApiDocument(), null, 2)}\n`);
console.log(`wrote ${file}`);
