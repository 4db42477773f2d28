import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { matchesRoute, PUBLIC_ROUTES } from './auth.js';

export interface OpenApiOptions {
  /** Listed as public in the document (no security requirement). */
  publicUrls: readonly string[];
  version: string;
}

const isPublic = (url: string, extra: readonly string[]) => matchesRoute(url, [...PUBLIC_ROUTES, ...extra]);

/**
 * OpenAPI 3 generated from the zod route schemas (@fastify/swagger + the type provider's
 * jsonSchemaTransform), served at /openapi.json, with Swagger UI at /docs. Swagger UI's assets
 * ship inside @fastify/swagger-ui and are served from this server: the page loads nothing from
 * the internet (the online spec validator badge is turned off).
 *
 * Must be installed before any route plugin: @fastify/swagger collects routes as they are added.
 */
export async function installOpenApi(app: FastifyInstance, opts: OpenApiOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Flotilla API',
        version: opts.version,
        description:
          'Admin REST API of the Flotilla coordinator. Send `Authorization: Bearer <token>`. Errors are `{ error: { code, message, details } }` with codes listed in docs/errors.md.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: (args) => {
      const out = jsonSchemaTransform(args) as { schema?: Record<string, unknown>; url: string };
      if (isPublic(args.url, opts.publicUrls)) out.schema = { ...(out.schema ?? {}), security: [] };
      return out as ReturnType<typeof jsonSchemaTransform>;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null, deepLinking: true }, logLevel: 'warn' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
