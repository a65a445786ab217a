# meshlet: one image for `sidecar` (the default), `control-plane` and `demo`.
# Configure it with MESHLET_* variables (every flag has one) or a mounted YAML file.
#   docker build -t meshlet .
#   docker build --build-arg BASE_IMAGE=localhost/meshlet-base:node20 -t meshlet .   # offline base, see scripts/container-base.sh

# The base is an argument so a locally made image can stand in where no registry is reachable.
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- build: dev dependencies + tsc; nothing of this stage reaches the runtime but dist/ ----
FROM ${BASE_IMAGE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY core ./core
COPY sidecar ./sidecar
COPY control-plane ./control-plane
COPY demo-services ./demo-services
COPY cli ./cli
RUN ./node_modules/.bin/tsc -p tsconfig.json

# ---- deps: production dependencies only ----
FROM ${BASE_IMAGE} AS deps
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund --loglevel=error

# ---- runtime: Node, production node_modules, compiled JS; runs as a non-root user ----
FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="meshlet" \
      org.opencontainers.image.description="A service mesh for HTTP services: Node.js sidecar and control plane" \
      org.opencontainers.image.licenses="Apache-2.0"
# npm, npx, yarn and corepack are build tools: the runtime needs only node.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /usr/local/bin/npm /usr/local/bin/npx \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /usr/local/bin/corepack /opt/yarn-* \
 && groupadd --system --gid 10001 meshlet \
 && useradd --system --uid 10001 --gid meshlet --home-dir /var/lib/meshlet --shell /usr/sbin/nologin meshlet \
 && mkdir -p /var/lib/meshlet \
 && chown meshlet:meshlet /var/lib/meshlet
COPY --from=deps /app/node_modules /app/node_modules
COPY --from=build /src/dist /app/dist
COPY package.json /app/
COPY config /app/config

# The sidecar's inbound listens on 0.0.0.0:15006 by default (peers call it); outbound and admin
# stay on loopback (the app and the health check share the container's network namespace).
# State (.meshlet/sidecar, .meshlet/control-plane by default) goes under the working directory:
# mount a volume at /var/lib/meshlet to keep it.
ENV NODE_ENV=production \
    HEALTHCHECK_URL=http://127.0.0.1:15000/ready
WORKDIR /var/lib/meshlet
EXPOSE 15006 15010

USER 10001:10001
# No curl in a slim image: Node does the probe. Set HEALTHCHECK_URL for the control plane (…:15010/v1/health).
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL,{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself (drain, deregister, exit 0).
STOPSIGNAL SIGTERM
# Node flags and MALLOC_ARENA_MAX: see core/node-flags.ts (a sidecar should not spread GC and compiler
# work over its host's cores, nor keep more memory than it uses; node-flags.test.ts keeps these in step).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--single-threaded-gc", "--v8-pool-size=1", "--max-semi-space-size=8", "/app/dist/cli/meshlet.js"]
CMD ["sidecar"]
