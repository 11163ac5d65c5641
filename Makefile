# keyshift: the two commands README.md promises, and their building blocks.
.PHONY: demo test setup build up down

demo:            ## the main job on the built-in demo world
	bash tests/demo.sh

test:            ## everything CI runs
	bash tests/test.sh

setup:           ## make this machine ready (idempotent)
	bash tests/setup.sh

build: setup
	cargo build --release --locked -p keyshift

up: setup        ## start the test world (tests/services/run/env)
	tests/services/up

down:
	tests/services/down

.PHONY: bench
bench:           ## rewrap benchmark, keyshift vs PyMongo (not part of test; BENCH_ARGS=--quick)
	bash tests/bench/run.sh

.PHONY: bench-rotate
bench-rotate:    ## rotate benchmark: keyshift rotate vs a PyMongo re-encryption (not part of test; BENCH_ARGS=--quick)
	bash tests/setup.sh
	cargo build --release --locked -p keyshift
	set -e; export KS_RUN_DIR=$${KS_RUN_DIR:-$${TMPDIR:-/tmp}/keyshift-bench-rotate}; \
	export KS_ENV_FILE=$$KS_RUN_DIR/env; \
	trap 'tests/services/down >/dev/null 2>&1 || true' EXIT; \
	tests/services/up --only mongodb,aws >/dev/null; \
	.venv/bin/python tests/bench/reencrypt_bench.py $(BENCH_ARGS)

.PHONY: dist test-dist container
dist:            ## release tarballs, x86_64 and aarch64 Linux, glibc 2.17+ (dist/out; docs/install.md)
	CARGO_TARGET_DIR=$${CARGO_TARGET_DIR:-$(abspath ..)/target-dist} bash tests/setup.sh
	bash dist/setup.sh
	bash dist/build.sh

test-dist: dist  ## the tarballs run from an empty directory: a real rewrap, glibc symbols, aarch64 under qemu (not part of test)
	bash dist/test.sh

container: dist  ## the container image from dist/Containerfile (or, where podman cannot run, its root filesystem, tested with chroot)
	bash dist/container.sh
