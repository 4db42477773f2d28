#!/usr/bin/env node
// Development launcher: runs server/src/main.ts from sources through the repository's development
// loader (tsx + @flotilla/source), so tests and local runs see edits without a build. The published
// `flotilla` bin is the compiled dist/main.js (package.json "bin"); this file is not packed.
await import('../../scripts/dev-loader.mjs');
await import('../src/main.ts');
