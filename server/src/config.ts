import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AppError } from './errors.js';

/**
 * `flotilla serve` configuration: flags win over environment variables, which win over defaults.
 * Parsed once at start-up; everything after trusts the result.
 */
export const ServeConfigSchema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    dataDir: z.string().min(1).default('./flotilla-data'),
    mongodbUrl: z.string().url().optional(),
    adminToken: z.string().min(16).optional(),
    deviceToken: z.string().min(16).optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();
export type ServeConfig = z.infer<typeof ServeConfigSchema>;

export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv): ServeConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'mongodb-url': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const raw = {
    port: values.port ?? env.FLOTILLA_PORT,
    host: values.host ?? env.FLOTILLA_HOST,
    dataDir: values['data-dir'] ?? env.FLOTILLA_DATA_DIR,
    mongodbUrl: values['mongodb-url'] ?? env.FLOTILLA_MONGODB_URL,
    adminToken: env.FLOTILLA_ADMIN_TOKEN,
    deviceToken: env.FLOTILLA_DEVICE_TOKEN,
    logLevel: values['log-level'] ?? env.FLOTILLA_LOG_LEVEL,
  };
  const parsed = ServeConfigSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  return parsed.data;
}
