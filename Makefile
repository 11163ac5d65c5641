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
