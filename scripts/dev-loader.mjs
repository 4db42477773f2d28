// Development loader: `node --import ./scripts/dev-loader.mjs file.ts` (or `await import()` of this
// file before anything else) runs TypeScript through tsx and resolves the @flotilla/* workspace
// packages to their sources (the `@flotilla/source` export condition) instead of their compiled
// dist/, so tests, the development launchers and simulator worker threads see edits without a
// build. Published packages never use this condition.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
// Registered after tsx, so it runs first and hands the extra condition down the chain.
register(
  'data:text/javascript,' +
    encodeURIComponent(
      'export async function resolve(specifier, context, next) {' +
        " return next(specifier, context.conditions.includes('@flotilla/source') ? context : { ...context, conditions: [...context.conditions, '@flotilla/source'] }); }",
    ),
);
