#!/usr/bin/env bash
# .ci/ollama.sh — make a real Ollama server available to the tests.
#
#   eval "$(.ci/ollama.sh)"     # then: go test ./llm/ ./cmd/ensinstruct/
#
# Idempotent. It
#   1. installs ollama v0.6.5 into $TOOLS/bin (built with `go install` from the
#      Go module proxy, or copied from a prebuilt binary when one is present),
#   2. starts `ollama serve` on $ADDR (loopback only) with its models in
#      $TOOLS/ollama-models, unless something already answers there,
#   3. creates the test models from testdata/models/stories260K.gguf:
#      tiny, tiny-a, tiny-b, tiny-c (same weights, different PARAMETERs) and
#      tiny-chat (a chat template),
#   4. prints `export ENSINSTRUCT_TEST_OLLAMA=$ADDR` on stdout.
# Everything else goes to stderr.
#
# Environment:
#   ENSINSTRUCT_TOOLS          cache dir kept between runs (default ~/.cache/ensinstruct-tools)
#   ENSINSTRUCT_OLLAMA_ADDR    listen address (default 127.0.0.1:11555)
#   ENSINSTRUCT_OLLAMA_PREBUILT  a prebuilt ollama v0.6.5 to copy instead of building
#                              (used only if it is v0.6.5)
set -euo pipefail

OLLAMA_VERSION=v0.6.5
TOOLS="${ENSINSTRUCT_TOOLS:-$HOME/.cache/ensinstruct-tools}"
ADDR="${ENSINSTRUCT_OLLAMA_ADDR:-127.0.0.1:11555}"
PREBUILT="${ENSINSTRUCT_OLLAMA_PREBUILT:-}"
BIN="$TOOLS/bin/ollama"
MODELS_DIR="$TOOLS/ollama-models"
LOG="$TOOLS/ollama.log"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GGUF="$ROOT/testdata/models/stories260K.gguf"

log() { printf '%s\n' "ollama.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

case "$ADDR" in
127.0.0.1:* | localhost:* | \[::1\]:*) ;;
*) die "ENSINSTRUCT_OLLAMA_ADDR=$ADDR is not a loopback address; the test server listens on loopback only" ;;
esac

[ -f "$GGUF" ] || die "model file $GGUF not found (the repository's testdata/models is incomplete)"
GGUF="$(cd "$(dirname "$GGUF")" && pwd)/$(basename "$GGUF")"

mkdir -p "$TOOLS/bin" "$MODELS_DIR"

# is_wanted_build FILE: true when FILE is an ollama binary built from the wanted module version.
is_wanted_build() {
	[ -x "$1" ] && go version -m "$1" 2>/dev/null |
		awk -v v="$OLLAMA_VERSION" '$1 == "mod" && $2 == "github.com/ollama/ollama" && $3 == v { ok = 1 } END { exit !ok }'
}

install_ollama() {
	if is_wanted_build "$BIN"; then
		return
	fi
	if is_wanted_build "$PREBUILT"; then
		log "copying prebuilt ollama $OLLAMA_VERSION from $PREBUILT"
		cp "$PREBUILT" "$BIN.partial"
		mv "$BIN.partial" "$BIN"
		return
	fi
	command -v go >/dev/null || die "go is needed to build ollama $OLLAMA_VERSION"
	if [ ! -f /usr/include/nlohmann/json.hpp ] || [ ! -f /usr/include/stb/stb_image.h ]; then
		if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
			log "installing the C++ headers ollama's cgo build needs"
			apt-get install -y nlohmann-json3-dev libstb-dev >&2 ||
				{ apt-get update >&2 && apt-get install -y nlohmann-json3-dev libstb-dev >&2; }
		else
			log "warning: nlohmann/json.hpp or stb/stb_image.h missing; the build may fail (apt-get install nlohmann-json3-dev libstb-dev)"
		fi
	fi
	log "building ollama $OLLAMA_VERSION with go install (a few minutes, cached in $TOOLS/bin afterwards)"
	GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "github.com/ollama/ollama@$OLLAMA_VERSION" >&2
	is_wanted_build "$BIN" || die "go install did not produce $BIN"
}

ready() { curl -fsS --max-time 2 "http://$ADDR/api/version" >/dev/null 2>&1; }

start_server() {
	if ready; then
		log "a server already answers on $ADDR"
		return
	fi
	log "starting ollama serve on $ADDR (log: $LOG)"
	# Up to 8 models stay loaded (the test model is 1 MB): the packages'
	# tests run at once and use several model names each, and a server
	# that keeps only two reloads runners all the time.
	# setsid + nohup: the server outlives this script (CI evals our output and
	# then runs the tests).
	OLLAMA_HOST="$ADDR" OLLAMA_MODELS="$MODELS_DIR" OLLAMA_KEEP_ALIVE=1h \
		OLLAMA_NUM_PARALLEL=2 OLLAMA_MAX_LOADED_MODELS=8 OLLAMA_NOPRUNE=1 \
		setsid nohup "$BIN" serve >"$LOG" 2>&1 </dev/null &
	local pid=$!
	for _ in $(seq 1 120); do
		if ready; then
			log "ollama serve is ready (pid $pid)"
			return
		fi
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG" >&2; die "ollama serve exited"; }
		sleep 0.5
	done
	tail -n 20 "$LOG" >&2
	die "ollama serve did not answer on $ADDR within 60s"
}

# create_model NAME PARAMETER-LINES...: (re)creates NAME when it is missing or
# its Modelfile changed since it was last created here. An argument that
# starts with TEMPLATE is written as a Modelfile line of its own.
create_model() {
	local name="$1"
	shift
	local modelfile="$TOOLS/Modelfile.$name"
	{
		printf 'FROM %s\n' "$GGUF"
		printf 'PARAMETER num_thread 1\n'
		for p in "$@"; do
			case "$p" in
			TEMPLATE*) printf '%s\n' "$p" ;;
			*) printf 'PARAMETER %s\n' "$p" ;;
			esac
		done
	} >"$modelfile.new"
	local stamp="$MODELS_DIR/.ensinstruct-$name.Modelfile"
	if cmp -s "$modelfile.new" "$stamp" &&
		curl -fsS --max-time 5 "http://$ADDR/api/show" -d "{\"model\":\"$name\"}" >/dev/null 2>&1; then
		rm -f "$modelfile.new"
		return
	fi
	mv "$modelfile.new" "$modelfile"
	log "creating model $name"
	OLLAMA_HOST="$ADDR" "$BIN" create "$name" -f "$modelfile" >>"$LOG" 2>&1 ||
		{ tail -n 5 "$LOG" >&2; die "ollama create $name failed"; }
	cp "$modelfile" "$stamp"
}

install_ollama
start_server
create_model tiny
create_model tiny-a "temperature 0.2" "seed 1"
create_model tiny-b "temperature 0.8" "seed 2" "top_k 20"
create_model tiny-c "temperature 1.2" "seed 3" "top_p 0.9"
# A chat-template model, for the automatic pool (chat style).
create_model tiny-chat 'TEMPLATE """<|user|>{{ .Prompt }}<|assistant|>"""'""

echo "export ENSINSTRUCT_TEST_OLLAMA=$ADDR"
