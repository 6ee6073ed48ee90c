#!/usr/bin/env bash
# Resolves the Apache Kafka broker jars from Maven Central (no Docker, no tarball) into
# "$CACHE/<version>/lib/" and writes the Java classpath to "$CACHE/classpath-<version>.txt"
# (CACHE = $BURNWATCH_CACHE_DIR/kafka or <repo>/.cache/kafka, outside git).
# Idempotent: when the classpath file exists and every jar on it exists, it does nothing.
# Env: KAFKA_VERSION (default: the <kafka.version> in pom.xml), BURNWATCH_CACHE_DIR.
# Prints the classpath file path on stdout (last line); progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pom="$here/pom.xml"
if [[ -n "${BURNWATCH_CACHE_DIR:-}" ]]; then cache="$BURNWATCH_CACHE_DIR/kafka"; else cache="$repo/.cache/kafka"; fi

default_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
version="${KAFKA_VERSION:-$default_version}"
if [[ -z "$version" ]]; then echo "install.sh: cannot read <kafka.version> from $pom" >&2; exit 1; fi
cp_file="$cache/classpath-$version.txt"

cached_ok() {
  [[ -s "$cp_file" ]] || return 1
  local jar
  IFS=: read -r -a jars < "$cp_file"
  for jar in "${jars[@]}"; do [[ -f "$jar" ]] || return 1; done
  # The pom or this script may have changed since the classpath was written.
  [[ "$cp_file" -nt "$pom" && "$cp_file" -nt "${BASH_SOURCE[0]}" ]] || return 1
}

if cached_ok; then echo "$cp_file"; exit 0; fi

command -v java >/dev/null || { echo "install.sh: java not found; install a JDK 17+ (e.g. apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install.sh: mvn not found; install Maven 3.8+ (e.g. apt-get install maven)" >&2; exit 1; }

mkdir -p "$cache"
# Concurrent installs (parallel test runs, benchmarks) wait for each other.
if command -v flock >/dev/null; then
  exec 9>"$cache/.install.lock"
  flock 9
  if cached_ok; then echo "$cp_file"; exit 0; fi
fi
echo "install.sh: resolving org.apache.kafka:kafka_2.13:$version from Maven Central..." >&2
lib="$cache/$version/lib"
tmp="$cache/$version/lib.tmp.$$"
log="$cache/mvn-$version.log"
rm -rf "$tmp"
# Copies the jars out of the local Maven repository (~/.m2) so the cache dir is self-contained
# (CI can cache just .cache/). -Dmaven.repo.local can be passed via MAVEN_OPTS.
if ! mvn -B -q -Dstyle.color=never -f "$pom" \
    -Dkafka.version="$version" \
    dependency:copy-dependencies \
    -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$log" 2>&1; then
  echo "install.sh: mvn failed (full log: $log):" >&2
  tail -n 30 "$log" >&2
  rm -rf "$tmp"
  exit 1
fi
ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "install.sh: no kafka_2.13 jar resolved ($log)" >&2; rm -rf "$tmp"; exit 1; }
rm -rf "$lib"
mv "$tmp" "$lib"
( shopt -s nullglob; jars=("$lib"/*.jar); IFS=:; printf '%s' "${jars[*]}" ) > "$cp_file.tmp.$$"
mv -f "$cp_file.tmp.$$" "$cp_file"
echo "install.sh: $(tr ':' '\n' < "$cp_file" | grep -c .) jars for Kafka $version; classpath in $cp_file" >&2
echo "$cp_file"
