#!/usr/bin/env node
// The `flotilla` command: the compiled CLI (dist/ is built by `npm run build`, run on install).
// A committed file rather than a bin path inside dist/, because npm links workspace bins before the
// root prepare script has built dist/, and skips targets that do not exist yet.
import '../dist/main.js';
