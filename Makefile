# The test command named in README.md; .ci/run installs what the tests
# need and then runs it.
.PHONY: test build bench

test:
	@files=$$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'); \
	unformatted=$$(gofmt -l $$files); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go test ./...

build:
	go build -o warden ./cmd/warden

# Go benchmarks of the hot paths; they use ../shared/data when present.
bench:
	go test -run '^$$' -bench 'Load|Decide' -benchmem -count 5 ./internal/lists/ ./internal/policy/
