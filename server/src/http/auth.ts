import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { tokenMatches } from '../coordinator/coordinator.js';

export type Role = 'admin' | 'viewer' | 'device';

/** Credentials the server accepts (issue 4 adds enrolment tokens and roles). */
export interface AuthConfig {
  adminToken: string;
  deviceToken: string;
}

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (!h || !h.startsWith('Bearer ')) throw new AppError('FL_ERR_AUTH_REQUIRED');
  return h.slice(7).trim();
}

/** preHandler factory: the request must carry a token of one of `roles` (admin passes everything). */
export function requireRole(auth: AuthConfig, roles: readonly Role[]) {
  return async (req: FastifyRequest): Promise<void> => {
    const token = bearer(req);
    if (tokenMatches(token, auth.adminToken)) return;
    if (tokenMatches(token, auth.deviceToken)) {
      if (roles.includes('device')) return;
      throw new AppError('FL_ERR_AUTH_FORBIDDEN');
    }
    throw new AppError('FL_ERR_AUTH_INVALID_TOKEN');
  };
}
