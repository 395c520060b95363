// Package deploytest checks the deployment files at the root of the repository — Dockerfile,
// .dockerignore and docker-compose.yml — first without Docker, then by running them.
//
// Without Docker, the tests parse the files and hold them to what the binary and docs/DESIGN.md
// say:
//
//   - every FOLLOWPUB_ variable named anywhere in docker-compose.yml or the Dockerfile is one the
//     binary reads (the authoritative list is `followpub env`, from a binary built once per test run),
//     and each service's effective configuration (binary defaults, then the image's ENV, then the
//     compose environment) passes the binary's own validation (`followpub watermark show` on a
//     scratch state file);
//   - every command and flag a service runs exists (`followpub COMMAND --bad-flag` lists them);
//   - the wiring holds: followpub's brokers are an advertised listener of the kafka service, its API
//     URL is the sim service's listening port, its credentials are accepted by a simulator started
//     with the sim service's own flags, its HTTP port is exposed and published; depends_on waits for
//     health only where there is a health check. That holds for every replica (each service that
//     runs `followpub run`); with more than one, each has STATE_STORE=kafka and the same
//     configuration (one group, one state topic) and a host port of its own. With STATE_STORE=file
//     the state is on a named volume the non-root user can write;
//   - the kafka service is a valid single-node KRaft configuration (roles, node id, quorum voters,
//     listeners and their security protocols, replication factors of 1, a health check against a
//     broker listener);
//   - the Dockerfile is a multi-stage, CGO-free, trimmed build of ./cmd/followpub whose -X flags name
//     real variables, with a non-root final user, the time zone database, and the same port and
//     state directory as the compose file; its base images are build arguments and it has no
//     `# syntax=` line, so it builds with base images made locally and no frontend image to pull;
//   - scripts/docker/compose.test.yml, the override make test-docker runs docker-compose.yml with,
//     swaps the images and puts every service on the host's network, and changes nothing else but
//     the addresses that forces (TestComposeOverride).
//
// The checks are functions that return a list of problems, so the tests also feed them broken copies
// of the real files and expect each break to be reported.
//
// With Docker — `make test-docker` builds the images on this machine (no registry is reachable) and
// names them in FOLLOWPUB_TEST_IMAGE and FOLLOWPUB_TEST_KAFKA_IMAGE — TestImage runs the image
// (stamped version, non-root user, time zone data, state on a fresh volume) and TestComposeUp runs
// `docker compose up` and `down`: both followpub replicas ready, exactly one owning the tenant,
// every published event in Kafka once with its key and headers; the owner stopped, the other
// takes over and publishes what arrives after, nothing twice; the tail service; nothing left
// behind. Without an image or a daemon they are skipped,
// unless FOLLOWPUB_TEST_DOCKER says make test-docker promised both: then they fail.
package deploytest
