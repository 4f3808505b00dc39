# ingressd's container image: built the way CI builds it (.ci/run:
# scripts/install-deps.sh, then scripts/build.sh), run as non-root from a
# slim Debian with only the runtime libraries.
#   docker build -t ingressd:0.1.0 .
#   kubectl apply -f deploy/kubernetes/        (docs/operator.md)

FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# Dependencies first, so that a source change does not reinstall them.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN apt-get update -qq && bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build build-* && bash scripts/build.sh -DBUILD_TESTING=OFF && strip --strip-debug build/ingressd

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      ca-certificates libyaml-cpp0.7 libyaml-0-2 libfmt9 libssl3 libcurl4 libnghttp2-14 libre2-9 libaprutil1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/ingressd /usr/local/bin/ingressd
COPY --from=build /src/examples /usr/share/ingressd/examples
# The Deployment sets runAsUser too; this makes the image non-root anywhere.
USER 65532:65532
EXPOSE 8080 8443 10254
ENTRYPOINT ["/usr/local/bin/ingressd"]
CMD ["serve", "--in-cluster", "--bind", "0.0.0.0", "--admin-bind", "0.0.0.0"]
