import type { FastifyPluginAsync } from 'fastify';
import type { Serving } from '../serving/serving.js';
import type { AuthConfig } from './auth.js';
import { deploymentsRoutes } from './deployments-routes.js';
import { inferenceRoutes } from './inference-routes.js';
import { tfServingRoutes } from './tfserving-routes.js';

export interface ServingRoutesOptions {
  serving: Serving;
  auth: AuthConfig;
  /** Inference and feedback without a token (INFERENCE_PUBLIC_ROUTES in auth.ts); the OIP health probes are always public (PUBLIC_ROUTES). */
  publicInference?: boolean;
  /** Register the inference routes (OIP, TF Serving); false on a coordinator-only node. Default true. */
  inference?: boolean;
}

/**
 * Everything serving answers over HTTP: OIP (`/v2`), TF Serving (`/v1/models`), deployments,
 * payloads and drift (`/api/v1`). Closes the Serving (flushing the payload log and bandit state
 * into the store) before the app's onClose hooks close the store.
 */
export const servingRoutes: FastifyPluginAsync<ServingRoutesOptions> = async (app, opts) => {
  if (opts.inference !== false) {
    await app.register(inferenceRoutes, opts);
    await app.register(tfServingRoutes, opts);
  }
  await app.register(deploymentsRoutes, opts);
  app.addHook('preClose', async () => {
    await opts.serving.close();
  });
};
