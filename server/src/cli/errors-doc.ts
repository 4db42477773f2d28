/**
 * Renders docs/errors.md from THE error registry. Regenerate after adding a code:
 *   node --import ./scripts/dev-loader.mjs server/src/cli/errors-doc.ts > docs/errors.md
 * test/admin/errors-doc.test.ts fails while the two differ.
 */
import { pathToFileURL } from 'node:url';
import { ERROR_REGISTRY, type ErrorCode } from '../errors.js';

const AREAS: Record<string, string> = {
  PROTO: 'Device protocol (socket.io)',
  AUTH: 'Authentication and roles',
  TOKEN: 'Tokens',
  CLIENT: 'Clients (devices)',
  TASK: 'Tasks',
  ROUND: 'Rounds',
  REPORT: 'Reports (device updates)',
  CODEC: 'Codecs',
  TENSOR: 'Tensors',
  CLI: 'Operator CLI',
  UPLOAD: 'Uploads',
  DATA: 'Device data',
};

const areaOf = (code: string) => code.split('_')[2];

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error Flotilla returns carries one code from the registry in',
    '`protocol/src/errors.ts`. Over HTTP the body is `{ "error": { "code", "message", "details" } }`',
    'with the status below (the inference routes use the Open Inference Protocol `{ "error" }` form);',
    'on the device socket the ack is `{ "ok": false, "error": { "code", "message", "details" } }`, and a refused connection handshake',
    'carries `{ "code", "message", "details" }` as the `connect_error` data (docs/api.md, "Device connection");',
    'the CLI prints `CODE: message` and exits non-zero. `details` is optional and code-specific.',
    '',
    'This file is generated: `node --import ./scripts/dev-loader.mjs server/src/cli/errors-doc.ts > docs/errors.md`; a test keeps it in step with the registry.',
  ];
  let area = '';
  for (const code of Object.keys(ERROR_REGISTRY) as ErrorCode[]) {
    const a = areaOf(code);
    if (a !== area) {
      area = a;
      lines.push('', `## ${AREAS[a] ?? a[0] + a.slice(1).toLowerCase()}`, '', '| Code | HTTP | Message |', '| --- | --- | --- |');
    }
    const e = ERROR_REGISTRY[code];
    lines.push(`| \`${code}\` | ${e.status} | ${e.message.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(renderErrorsDoc());
