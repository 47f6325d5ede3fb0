# Shortcuts; each target is one plain go command you can run yourself.
.PHONY: run test race bench fuzz readme-check ci

run: ## run the server on :8080 (REST, WebSocket) and :1883 (MQTT) with SQLite in data/
	go run ./cmd/imserver

test: ## the whole test suite (starts a throwaway PostgreSQL when IM_TEST_POSTGRES_URL is unset)
	go test ./...

race:
	go test -race ./...

bench: ## publish-path benchmarks on SQLite and PostgreSQL
	go test ./e2e -run '^$$' -bench . -benchtime 3000x

fuzz: ## each fuzz target for a minute (FUZZTIME=5m for longer); not part of CI
	go test ./auth -run '^$$' -fuzz '^FuzzTokensParse$$' -fuzztime $(FUZZTIME)
	go test ./auth -run '^$$' -fuzz '^FuzzParsePHC$$' -fuzztime $(FUZZTIME)
	go test ./topics -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	go test ./topics -run '^$$' -fuzz '^FuzzParseConv$$' -fuzztime $(FUZZTIME)
	go test ./broker -run '^$$' -fuzz '^FuzzCheckConnectHeader$$' -fuzztime $(FUZZTIME)
	go test ./im -run '^$$' -fuzz '^FuzzPublish$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s
	go test ./httpapi -run '^$$' -fuzz '^FuzzBind$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s
	go test ./hooks -run '^$$' -fuzz '^FuzzCidOf$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s

FUZZTIME ?= 1m

readme-check: ## paste the shell examples of README.md and docs/ into a fresh server, checking every output shown (needs curl, jq, mosquitto-clients)
	bash scripts/readme-check.sh

ci:
	bash .ci/run
