# Targets loop over every Go module: the root and each directory below it
# holding a go.mod.

MODULES := $(shell find . -name .git -prune -o -name testdata -prune -o -name go.mod -type f -print | sed 's|/go.mod$$||' | LC_ALL=C sort)

.PHONY: test vet tidy fmt bench fuzz

# test: gofmt check, go vet and go test -race in every module (scripts/test.sh).
test:
	bash scripts/test.sh

# vet: go vet ./... in every module.
vet:
	@set -e; for m in $(MODULES); do echo "go vet: $$m"; (cd $$m && go vet ./...); done

# tidy: go mod tidy in every module.
tidy:
	@set -e; for m in $(MODULES); do echo "go mod tidy: $$m"; (cd $$m && go mod tidy); done

# fmt: gofmt -w on every Go file outside .git and testdata.
fmt:
	find . -name .git -prune -o -name testdata -prune -o -name '*.go' -type f -print0 | xargs -0 gofmt -w

# bench: the benchmark suite of bench/, benchstat summary and target check
# (scripts/bench.sh); COUNT=3 make bench runs it three times.
bench:
	bash scripts/bench.sh

# fuzz: every fuzz target of every module for 1,000,000 executions each,
# one go test run per target, then the executions each ran
# (scripts/fuzz.sh); FUZZTIME=30s make fuzz runs each for a while instead.
fuzz:
	FUZZTIME=$${FUZZTIME:-1000000x} bash scripts/fuzz.sh
