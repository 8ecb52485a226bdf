# The image a scheduled drill runs in (EventBridge Scheduler → ECS task: `stackdrill drill run <name>`):
# the release binary, the PostgreSQL client/server binaries the local provider and verifiers use, and the
# repository's drills/, runbooks/ and stacks/.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin stackdrill

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-15 git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /work stackdrill
COPY --from=build /src/target/release/stackdrill /usr/local/bin/stackdrill
COPY --chown=stackdrill drills/ /work/drills/
COPY --chown=stackdrill runbooks/ /work/runbooks/
COPY --chown=stackdrill stacks/ /work/stacks/
ENV STACKDRILL_PG_BIN=/usr/lib/postgresql/15/bin
USER stackdrill
WORKDIR /work
ENTRYPOINT ["stackdrill"]
CMD ["drill", "list"]
