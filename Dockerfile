# One image for every Burnwatch stage: `docker run burnwatch <ingest|aggregate|detect|notify|start>`.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# npm install, not npm ci: the lock holds only one platform's optional native packages (see .ci/run)
RUN npm install --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY services ./services
COPY shared ./shared
COPY schemas ./schemas
COPY infra/clickhouse ./infra/clickhouse
COPY fixtures ./fixtures
USER node
ENTRYPOINT ["node", "bin/burnwatch.js"]
CMD ["start"]
