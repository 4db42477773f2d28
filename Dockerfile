# syntax=docker/dockerfile:1
# The Flotilla coordinator (`flotilla serve`). The build stage compiles every workspace to dist/
# (tsc -b) and prunes development dependencies; the image runs `node` on that JavaScript (no
# TypeScript sources, no tsx, no compiler in it). Configuration is by env
# (FLOTILLA_*; see server/src/config.ts); state lives in /data (SQLite + blobs, or only the
# generated tokens when FLOTILLA_MONGODB_URL points at MongoDB).

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles its native addon when no prebuilt binary matches.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first, so that the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/package.json
COPY model/package.json model/package.json
COPY client-sdk/package.json client-sdk/package.json
COPY server/package.json server/package.json
COPY simulator/package.json simulator/package.json
# tfjs-node is optional: when its libtensorflow download fails, npm drops it and the wasm backend is used.
# FLOTILLA_SKIP_BUILD: the root prepare script (the build) waits until the sources are copied below.
RUN FLOTILLA_SKIP_BUILD=1 npm ci --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json tsconfig.base.build.json tsconfig.build.json ./
COPY protocol protocol
COPY model model
COPY client-sdk client-sdk
COPY server server
COPY simulator simulator
# Compile to */dist, then keep only what runs: production dependencies, manifests, dist/ and bins.
RUN npm run build \
  && FLOTILLA_SKIP_BUILD=1 npm prune --omit=dev --no-audit --no-fund \
  && rm -rf protocol/src model/src client-sdk/src server/src simulator/src tsconfig*.json */tsconfig.build.json */dist/.tsbuildinfo \
  && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    FLOTILLA_HOST=0.0.0.0 \
    FLOTILLA_PORT=8080 \
    FLOTILLA_DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.FLOTILLA_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "server/bin/flotilla.mjs"]
CMD ["serve"]
