#!/usr/bin/env bash
# One home for SQL: every statement lives in sql/ (migrations and their functions) or in the TollgatePostgres target
# (its stores, event store, projections and client). This fails, naming each line, when Swift code anywhere else under
# Sources/ holds SQL or runs a statement itself. Run by ./ops/test before the build; run it alone as ops/lib/sql-home.sh.
#
# A line that must name SQL without running it (advice in an error message) ends with the comment `// not SQL: <why>`.
# Tests and benchmarks are not checked: tests read the database as their oracle, benchmarks fill it with fixtures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# Statements (upper case, as this code base writes them), PostgreSQL's functions, and running a statement directly.
pattern='\b(SELECT|INSERT INTO|UPDATE [a-z_.]+ SET|DELETE FROM|TRUNCATE|UNLISTEN|LISTEN|NOTIFY|CALL [a-z_.]+|'
pattern+='CREATE (TABLE|INDEX|FUNCTION|ROLE|SCHEMA|TRIGGER)|ALTER (TABLE|ROLE|FUNCTION)|DROP (TABLE|ROLE|FUNCTION)|'
pattern+='GRANT [A-Z]|REVOKE [A-Z]|BEGIN|COMMIT|ROLLBACK|SET (LOCAL|SESSION)|ON CONFLICT)\b|\bpg_[a-z_]+\(|\btollgate\.[a-z_]+\(|'
pattern+='\.(query|execute)\("'

found=$(grep -rnE "$pattern" Sources --include='*.swift' \
    | grep -v '^Sources/TollgatePostgres/' \
    | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' \
    | grep -vE '// not SQL: ' || true)
if [ -n "$found" ]; then
    echo "ops/lib/sql-home.sh: SQL outside sql/ and Sources/TollgatePostgres (move it into a store there):" >&2
    echo "$found" >&2
    exit 1
fi
