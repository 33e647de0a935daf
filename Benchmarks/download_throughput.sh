#!/usr/bin/env bash
# Serves a model of MODEL_MB MB (F32, 4 tensors) from `rondo serve` and has CLIENTS curl processes download it
# at once, three times; prints the total rate of each run and the coordinator's RSS before, at peak and after.
# curl writes to /dev/null, so the figure is what the coordinator serves, not what a client can keep up with
# (`rondo bench round` measures clients that keep the model in memory).
#
#   Benchmarks/download_throughput.sh RONDO_BINARY [CLIENTS=10] [MODEL_MB=100] [PORT=18777]
set -euo pipefail
rondo=$1 clients=${2:-10} model_mb=${3:-100} port=${4:-18777}
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/model.safetensors" "$model_mb" <<'PY'
import json, struct, sys
path, megabytes = sys.argv[1], int(sys.argv[2])
count = megabytes * 1_000_000 // 4 // 4
header, offset = {}, 0
for index in range(4):
    header[f"layer{index}.weight"] = {"dtype": "F32", "shape": [count], "data_offsets": [offset, offset + 4 * count]}
    offset += 4 * count
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(path, "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text)
    out.truncate(8 + len(text) + offset)
PY
"$rondo" serve --port "$port" --data-dir "$work/data" --initial-model "$work/model.safetensors" --open-enrolment \
    --min-available-clients 100000 --log-level error >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
tokens=()
for index in $(seq 1 "$clients"); do
    tokens+=("$(curl -sf -X POST -H 'Content-Type: application/json' -d "{\"name\":\"dl-$index\"}" \
        "http://127.0.0.1:$port/v1/clients" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')")
done
rss() { awk -v field="$1" '$1 == field":" { print int($2 / 1000) }' "/proc/$server/status"; }
echo "coordinator RSS before: $(rss VmRSS) MB"
for run in 1 2 3; do
    started=$(date +%s.%N)
    pids=()
    for token in "${tokens[@]}"; do
        curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/models/current" &
        pids+=($!)
    done
    wait "${pids[@]}"
    ended=$(date +%s.%N)
    python3 -c "print(f'run $run: {$clients} x {$model_mb} MB in {$ended - $started:.2f} s = {$clients * $model_mb / ($ended - $started):.0f} MB/s in total')"
done
echo "coordinator RSS after: $(rss VmRSS) MB, peak $(rss VmHWM) MB (the peak includes reading the model at start)"
