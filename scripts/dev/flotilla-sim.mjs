#!/usr/bin/env node
// Development launcher of `flotilla-sim`: runs simulator/src/bin.ts from sources through the
// development loader (tsx + the @flotilla/source condition), so tests see edits without a build.
// The published bin, simulator/bin/flotilla-sim.mjs, runs the compiled dist/ instead.
await import('../dev-loader.mjs');
await import('../../simulator/src/bin.ts');
