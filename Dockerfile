# Builds the agentq binary and serves the store (see docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin agentq

FROM debian:bookworm-slim
COPY --from=build /src/target/release/agentq /usr/local/bin/agentq
COPY --from=build /src/webshop-fixtures /data/webshop-fixtures
COPY --from=build /src/envs /data/envs
WORKDIR /data
EXPOSE 3000
CMD ["agentq", "serve", "--addr", "0.0.0.0:3000"]
