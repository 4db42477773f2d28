#!/usr/bin/env node
// Development launcher: runs simulator/src/bin.ts from sources through the repository's development
// loader (tsx + @flotilla/source), so tests see edits without a build. The published `flotilla-sim`
// bin is the compiled dist/bin.js (package.json "bin"); this file is not packed.
await import('../../scripts/dev-loader.mjs');
await import('../src/bin.ts');
