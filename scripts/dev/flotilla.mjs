#!/usr/bin/env node
// Development launcher of `flotilla`: runs server/src/main.ts from sources through the development
// loader (tsx + the @flotilla/source condition), so tests and local runs see edits without a build.
// The published bin, server/bin/flotilla.mjs, runs the compiled dist/ instead.
await import('../dev-loader.mjs');
await import('../../server/src/main.ts');
