#!/usr/bin/env bash
# Regenerates Sources/FederationTelemetry/OTLP/*.pb.swift: the OTLP trace export messages, as internal
# swift-protobuf types. Run it by hand when moving to a new opentelemetry-proto release; the build never runs it.
#
# Where the schema comes from: the PyPI package `opentelemetry-proto` (the one our test receiver decodes with)
# embeds each .proto file as a serialized FileDescriptorProto. This script installs the pinned version into a
# throw-away venv, writes those descriptors out as a FileDescriptorSet and hands it to protoc with
# --descriptor_set_in, so no .proto file is checked in or downloaded. (The descriptors carry no comments, so
# the generated code has none either.) opentelemetry-proto 1.45.2 on PyPI is generated from the
# opentelemetry-proto v1.10.0 release, as its README says.
#
# Needs: protoc (Debian: `apt-get install protobuf-compiler`), python3 with venv, and protoc-gen-swift of the
# same version as the SwiftProtobuf dependency in Package.swift, built outside this repository:
#   git clone <swift-protobuf> /tmp/swift-protobuf && cd /tmp/swift-protobuf && git checkout 1.39.0 \
#     && swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf/.build/release/protoc-gen-swift scripts/generate-otlp-protos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OTLP_PYPI_VERSION=1.45.2
SWIFT_PROTOBUF_VERSION=1.39.0
PROTOC_GEN_SWIFT=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
OUT=Sources/FederationTelemetry/OTLP
PROTOS=(
  opentelemetry/proto/common/v1/common.proto
  opentelemetry/proto/resource/v1/resource.proto
  opentelemetry/proto/trace/v1/trace.proto
  opentelemetry/proto/collector/trace/v1/trace_service.proto
)

command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
[ -x "$PROTOC_GEN_SWIFT" ] || { echo "set PROTOC_GEN_SWIFT to a protoc-gen-swift binary" >&2; exit 1; }
plugin_version=$("$PROTOC_GEN_SWIFT" --version)
if [ "$plugin_version" != "protoc-gen-swift $SWIFT_PROTOBUF_VERSION" ]; then
  echo "need protoc-gen-swift $SWIFT_PROTOBUF_VERSION (the SwiftProtobuf version pinned in Package.swift), got: $plugin_version" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "opentelemetry-proto==$OTLP_PYPI_VERSION"
"$work/venv/bin/python" - "$work/otlp.desc" <<'PY'
import sys
from google.protobuf import descriptor_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

descriptor_set, seen = descriptor_pb2.FileDescriptorSet(), set()

def add(file):  # dependencies first, as protoc expects
    if file.name in seen:
        return
    seen.add(file.name)
    for dependency in file.dependencies:
        add(dependency)
    descriptor_set.file.add().ParseFromString(file.serialized_pb)

add(trace_service_pb2.DESCRIPTOR)
with open(sys.argv[1], "wb") as out:
    out.write(descriptor_set.SerializeToString())
print("descriptors:", ", ".join(f.name for f in descriptor_set.file))
PY

rm -f "$OUT"/*.pb.swift
protoc --descriptor_set_in="$work/otlp.desc" --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
  --swift_out="$OUT" --swift_opt=Visibility=Internal --swift_opt=FileNaming=DropPath "${PROTOS[@]}"
echo "generated with $(protoc --version) and $plugin_version:"
ls "$OUT"/*.pb.swift
