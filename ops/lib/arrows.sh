#!/usr/bin/env bash
# The arrows that must never exist (docs/architecture.md): each target imports only the modules listed for it here,
# and the pure parts (the relay's state machine, the gate's ruling) import nothing that does I/O. SwiftPM alone does
# not stop a target importing a module another target of the package built, so this reads every `import` line and
# fails, naming each file and line, on one that is not allowed. Run by ./ops/test before the build; run it alone as
# ops/lib/arrows.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# target (a folder of Sources/) -> the modules it may import, space separated.
declare -A allowed=(
    [TollgateCore]="Foundation Crypto Yams"
    [TollgateSystem]="Foundation"
    [TollgatePostgres]="Foundation Synchronization Logging NIOCore NIOPosix CLibPQ TollgateSystem ServiceLifecycle Crypto"
    [TollgateMCP]="Foundation Synchronization Logging NIOCore NIOPosix NIOHTTP1 AsyncHTTPClient TollgateCore TollgateSystem Tracing
        Instrumentation"
    [TollgateServer]="Foundation Synchronization Logging NIOCore NIOPosix NIOHTTP1 NIOHTTPTypes AsyncHTTPClient Hummingbird HTTPTypes
        ServiceLifecycle UnixSignals Prometheus Metrics Crypto TollgateCore TollgateMCP TollgatePostgres TollgateSystem Tracing
        Instrumentation OTel"
    [tollgate]="Foundation Dispatch Logging NIOCore NIOPosix NIOHTTP1 AsyncHTTPClient ArgumentParser Yams TollgateCore
        TollgatePostgres TollgateServer"
)
# Files that must stay pure (no I/O, no clock, no logging): they may import only these.
pure_files=(
    Sources/TollgateMCP/Relay/RelayRequests.swift
    Sources/TollgateMCP/Relay/RelayStateMachine.swift
    Sources/TollgateMCP/Relay/UpstreamLifecycle.swift
    Sources/TollgateMCP/Relay/ToolCatalog.swift
    Sources/TollgateCore/Gate/GateRuling.swift
)
pure_allowed="TollgateCore Foundation"
# The C library (conditionally imported per platform) is every target's.
platform="Glibc Musl Darwin"

failures=""
# `import X`, `@preconcurrency import X`, `import struct X.Y`, `@_exported import X`: the module is X.
imports() {
    grep -nE '^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*(public[[:space:]]+|internal[[:space:]]+)?import[[:space:]]' "$1" \
        | sed -E 's/^([0-9]+):.*import[[:space:]]+((struct|class|enum|protocol|func|var|let|typealias)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*).*/\1 \4/'
}
for target in "${!allowed[@]}"; do
    [ -d "Sources/$target" ] || { failures+="Sources/$target: no such target (update ops/lib/arrows.sh)"$'\n'; continue; }
    while IFS= read -r -d '' file; do
        while read -r line module; do
            [ -n "$module" ] || continue
            case " $(echo ${allowed[$target]}) $platform " in
                *" $module "*) ;;
                *) failures+="$file:$line: $target may not import $module"$'\n' ;;
            esac
        done < <(imports "$file")
    done < <(find "Sources/$target" -name '*.swift' -print0)
done
for file in "${pure_files[@]}"; do
    [ -f "$file" ] || { failures+="$file: listed as pure but missing (update ops/lib/arrows.sh)"$'\n'; continue; }
    while read -r line module; do
        [ -n "$module" ] || continue
        case " $pure_allowed " in
            *" $module "*) ;;
            *) failures+="$file:$line: a pure part may not import $module"$'\n' ;;
        esac
    done < <(imports "$file")
done
if [ -n "$failures" ]; then
    echo "ops/lib/arrows.sh: imports that docs/architecture.md forbids:" >&2
    printf '%s' "$failures" >&2
    exit 1
fi
